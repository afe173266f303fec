// The answer's study (issue 38): each arm key builds what it says, the product
// init is the factored model's function at step 0, learning-rate grids extend at
// an edge, Holm and TOST against hand-computed numbers, the whole-split final
// evaluation, and the compact vocabulary round trip through prepare and train.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/random.h"
#include "models/gpt.h"
#include "test_util.h"
#include "train/data/prepare.h"
#include "train/data/shards.h"
#include "train/data/vocab_map.h"
#include "train/io/csv.h"
#include "train/data/text_loader.h"
#include "train/data/text_loader.h"
#include "train/study/stats.h"
#include "train/study/sweep.h"
#include "train_test_util.h"

using namespace tg;
using namespace tg::train;
namespace fs = std::filesystem;

namespace {

models::GPTConfig small_cfg() {
    models::GPTConfig c = models::preset("tiny");
    c.vocab_size = 97;
    c.context_length = 16;
    c.emb_dim = 16;
    c.n_heads = 2;
    c.n_layers = 2;
    c.drop_rate = 0;
    return c;
}

Ids some_ids(int64_t B, int64_t T, int64_t V) {
    Ids ids{{B, T}, {}};
    for (int64_t i = 0; i < B * T; ++i) ids.data.push_back((i * 37 + 11) % V);
    return ids;
}

Tensor logits_of(const models::GPTConfig& c, uint64_t seed, std::string* rng_after = nullptr) {
    manual_seed(seed);
    auto m = models::build_model(c);
    if (rng_after) *rng_after = default_generator().state();
    m->eval();
    NoGradGuard ng;
    return m->forward(some_ids(2, 16, c.vocab_size));
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    double d = 0;
    for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::fabs(double(a.data()[i]) - b.data()[i]));
    return d;
}

}  // namespace

TEST_CASE("arm C: the product init is arm B's function at step 0 and leaves the generator where B does",
          "[study]") {
    for (bool bias : {false, true}) {
        models::GPTConfig b = small_cfg();
        b.qkv_bias = bias;
        b.attention = "mha";
        b.qk_dim = b.emb_dim;
        b.out_proj = false;
        models::GPTConfig c = b;
        c.attention = "alt1";
        c.qk_dim.reset();
        c.init = "product";
        std::string rng_b, rng_c;
        Tensor lb = logits_of(b, 7, &rng_b), lc = logits_of(c, 7, &rng_c);
        // Same function: the logits agree to float rounding (S = Wk^T Wq is one more product).
        CHECK(max_abs_diff(lb, lc) < 2e-5);
        CHECK(rng_b == rng_c);
        // ... and not by accident: alt1's own init is another function.
        models::GPTConfig d = c;
        d.init = "default";
        CHECK(max_abs_diff(lb, logits_of(d, 7)) > 1e-3);
    }
}

TEST_CASE("arm E: init-gain scales W_query and W_key and nothing else, and Z is uniform attention", "[study]") {
    models::GPTConfig b = small_cfg();
    b.qk_dim = b.emb_dim;
    b.out_proj = false;
    models::GPTConfig e = b;
    e.init_gain = 1.5f;
    manual_seed(3);
    auto mb = models::build_model(b);
    manual_seed(3);
    auto me = models::build_model(e);
    auto sb = mb->state_dict(), se = me->state_dict();
    REQUIRE(sb.size() == se.size());
    for (size_t k = 0; k < sb.size(); ++k) {
        const std::string& name = sb[k].first;
        const Tensor &t = sb[k].second, &u = se[k].second;
        REQUIRE(se[k].first == name);
        bool qk = name.find("W_query.weight") != std::string::npos || name.find("W_key.weight") != std::string::npos;
        for (int64_t i = 0; i < t.numel(); ++i) {
            float want = qk ? t.data()[i] * 1.5f : t.data()[i];
            if (u.data()[i] != want) FAIL(name << "[" << i << "]: " << u.data()[i] << " != " << want);
        }
    }
    // Z: every row attends uniformly to its prefix, whatever the input: the
    // first position's context is its own value, the second the mean of two.
    models::GPTConfig z = small_cfg();
    z.uniform_attention = true;
    z.out_proj = false;
    manual_seed(3);
    auto mz = models::build_model(z);
    for (auto& [name, t] : mz->state_dict()) CHECK(name.find("W_query") == std::string::npos);
    auto* att = dynamic_cast<nn::MultiHeadAttention*>(mz->trf_blocks[0]->att.get());
    REQUIRE(att);
    Tensor x = test::leaf({1, 2, 16}, 5).detach();
    NoGradGuard ng;
    mz->eval();
    Tensor y = (*att)(x), v = (*att->W_value)(x);
    for (int64_t c = 0; c < 16; ++c) {
        CHECK(y.data()[c] == Approx(v.data()[c]).margin(1e-6));
        CHECK(y.data()[16 + c] == Approx((v.data()[c] + v.data()[16 + c]) / 2).margin(1e-6));
    }
    CHECK(att->bilinear_heads().empty());  // the probe skips it, saying so
}

TEST_CASE("arm keys parse into the run's options, and misuse is refused by name", "[study]") {
    SweepVariant c = parse_variant("alt1:init=product:out-proj=off:wd=0:name=C0:lr-from=C:eval-seeds=2");
    TrainOptions o;
    c.apply(o);
    CHECK(o.config.attention == "alt1");
    CHECK(o.config.init == "product");
    CHECK(o.config.has_out_proj() == false);
    CHECK(o.weight_decay == 0);
    CHECK(c.label() == "C0");
    CHECK(c.lr_from == "C");
    CHECK(c.eval_seeds == std::optional<int64_t>(2));
    SweepVariant e = parse_variant("mha:qk-dim=128:out-proj=off:init-gain=1.31607:name=E");
    e.apply(o);
    CHECK(o.config.attention == "mha");
    CHECK(o.config.init == "default");
    CHECK(o.config.init_gain == Approx(1.31607f));
    SweepVariant z = parse_variant("mha:scores=zero");
    z.apply(o);
    CHECK(o.config.uniform_attention);
    CHECK_THROWS_WITH(parse_variant("mha:init=product"), Catch::Contains("init") && Catch::Contains("alt1"));
    CHECK_THROWS_WITH(parse_variant("alt1:init-gain=2"), Catch::Contains("init-gain"));
    CHECK_THROWS_WITH(parse_variant("mha:init-gain=-1"), Catch::Contains("a number > 0"));
    CHECK_THROWS_WITH(parse_variant("mha:scores=zero:qk-dim=8"), Catch::Contains("scores=zero"));
    CHECK_THROWS_WITH(parse_variant("mha:eval-seeds=0"), Catch::Contains("eval-seeds"));
}

TEST_CASE("learning-rate grids extend by 2 at an edge until the best rate is bracketed", "[study]") {
    SweepPlan p;
    p.variants = {parse_variant("mha:name=B"), parse_variant("alt1:name=D"), parse_variant("mha:lr-from=D:name=Z")};
    p.lrs = {1e-3, 2e-3, 4e-3};
    p.selection_seeds = {101, 102};
    p.extend_lrs = true;
    // Loss against log2(lr / 1e-3): B is best at 8e-3 (beyond the top), D at 1e-3... then 5e-4.
    auto loss_b = [](double lr) { double u = std::log2(lr / 1e-3) - 3; return 5 + u * u; };
    auto loss_d = [](double lr) { double u = std::log2(lr / 1e-3) + 1; return 6 + u * u; };
    std::vector<SweepRun> runs;
    auto add = [&](const std::string& v, double lr, double loss) {
        for (uint64_t s : p.selection_seeds) {
            SweepRun r;
            r.variant = v;
            r.lr = lr;
            r.seed = s;
            r.final_val_loss = loss + (s == 101 ? 0.01 : -0.01);
            runs.push_back(r);
        }
    };
    for (double lr : p.lrs) {
        add("mha:name=B", lr, loss_b(lr));
        add("alt1:name=D", lr, loss_d(lr));
    }
    CHECK(variant_grid(p, p.variants[0], runs) == std::vector<double>{1e-3, 2e-3, 4e-3, 8e-3});
    CHECK(variant_grid(p, p.variants[1], runs) == std::vector<double>{5e-4, 1e-3, 2e-3, 4e-3});
    CHECK(chosen_lrs(p, runs).empty());  // the extended rates have not run yet
    add("mha:name=B", 8e-3, loss_b(8e-3));
    add("mha:name=B", 16e-3, loss_b(16e-3));
    add("alt1:name=D", 5e-4, loss_d(5e-4));
    add("alt1:name=D", 2.5e-4, loss_d(2.5e-4));
    CHECK(variant_grid(p, p.variants[0], runs) == std::vector<double>{1e-3, 2e-3, 4e-3, 8e-3, 16e-3});
    CHECK(variant_grid(p, p.variants[1], runs) == std::vector<double>{2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3});
    auto chosen = chosen_lrs(p, runs);
    REQUIRE(chosen.size() == 3);
    CHECK(chosen[0].second == 8e-3);
    CHECK(chosen[1].second == 5e-4);
    CHECK(chosen[2].second == 5e-4);  // Z takes D's rate
    p.extend_lrs = false;
    CHECK(variant_grid(p, p.variants[0], runs) == p.lrs);
    // A selected variant's selection loss is the whole-split figure when the run made one.
    SweepRun r;
    r.final_val_loss = 7;
    CHECK(selection_loss(r) == 7);
    r.full_val_loss = 6.5;
    CHECK(selection_loss(r) == 6.5);
}

TEST_CASE("Holm and TOST against hand-computed values", "[study][stats]") {
    // Holm over p = (0.01, 0.04, 0.03): sorted 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> 0.06 (monotone).
    std::vector<double> h = stats::holm({0.01, 0.04, 0.03});
    CHECK(h[0] == Approx(0.03));
    CHECK(h[1] == Approx(0.06));
    CHECK(h[2] == Approx(0.06));
    CHECK(stats::holm({0.5, 0.9})[1] == Approx(1.0));
    std::vector<double> with_nan = stats::holm({0.02, NAN, 0.04});  // a test not made is not in the family
    CHECK(with_nan[0] == Approx(0.04));
    CHECK(std::isnan(with_nan[1]));
    CHECK(with_nan[2] == Approx(0.04));
    // d = a - b = (0.01, 0.02, 0.00, 0.01): mean 0.01, sd sqrt(2/3)/100 = 0.0081650, se 0.0040825,
    // t = 2.4495 on 3 df: two-sided p = 0.0917 (t table: 2.353 -> 0.10, 3.182 -> 0.05).
    std::vector<double> a = {1.01, 1.02, 1.00, 1.01}, b = {1.0, 1.0, 1.0, 1.0};
    stats::PairedTest t = stats::paired_test(a, b, 0.02);
    CHECK(t.diff.mean == Approx(0.01));
    CHECK(t.diff.sd == Approx(0.0081650).epsilon(1e-4));
    CHECK(t.t == Approx(2.4495).epsilon(1e-4));
    CHECK(t.p == Approx(0.0917).epsilon(5e-3));
    // TOST at +-0.02: t_lo = 0.03 / se = 7.348, t_hi = 0.01 / se = 2.4495: p = P(T3 >= 2.4495) = 0.0459.
    CHECK(t.p_tost == Approx(0.0459).epsilon(5e-3));
    // Power: effect 0.02, sd 0.008165, n 4: shift 4.899, t_crit 3.182 -> P(T3 >= -1.717) ~ 0.908.
    CHECK(stats::paired_power(0.02, 0.0081650, 4) == Approx(0.908).epsilon(0.02));
    // The document bootstrap's point value is the pooled mean; its interval contains it.
    stats::Bootstrap bs = stats::document_bootstrap({10, 30, 20}, {10, 10, 10}, 1000, 1);
    CHECK(bs.value == Approx(2.0));
    CHECK(bs.lo < 2.0);
    CHECK(bs.hi > 2.0);
    CHECK(bs.lo >= 1.0);
    CHECK(bs.hi <= 3.0);
}

TEST_CASE("compact vocabulary: prepare relabels losslessly, train decodes its samples through it, and the "
          "final evaluation covers the whole val split",
          "[study][slow]") {
    fs::path dir = fs::temp_directory_path() / ("tapegrad_compact_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "in");
    std::string text = read_text_file(test::source_path("data/the-verdict.txt"));
    // 40 documents, so some go to val.
    for (int i = 0; i < 40; ++i) {
        std::ofstream f(dir / "in" / fmt::format("d{:02d}.txt", i));
        f << text.substr(static_cast<size_t>(i) * 400, 400);
    }
    auto prep = [&](const std::string& vocab, const std::string& out) {
        PrepareOptions o;
        o.inputs = {(dir / "in").string()};
        o.out_dir = (dir / out).string();
        o.vocab_dir = test::source_path("data");
        o.vocab = vocab;
        o.val_fraction = 0.25;
        o.progress = false;
        std::ostringstream w;
        return prepare(o, w);
    };
    prep("gpt2", "g");
    prep("compact", "c");
    auto map = VocabMap::from_manifest((dir / "c").string());
    REQUIRE(map);
    CHECK_FALSE(VocabMap::from_manifest((dir / "g").string()));
    for (const char* split : {"train", "val"}) {
        auto gs = shards::list_shards((dir / "g").string(), split), cs = shards::list_shards((dir / "c").string(), split);
        REQUIRE(gs.size() == cs.size());
        for (size_t i = 0; i < gs.size(); ++i) {
            std::vector<uint16_t> g = shards::read_shard(gs[i]), c = shards::read_shard(cs[i]);
            REQUIRE(g.size() == c.size());
            for (size_t k = 0; k < g.size(); ++k) {
                REQUIRE(c[k] < map->size());
                REQUIRE(map->to_gpt2(c[k]) == g[k]);  // lossless
            }
        }
    }
    // Train on the compact shards: vocab_size comes from the map, the samples
    // decode to the text of the same GPT-2 ids, the final evaluation sees every
    // val window.
    TrainOptions o = test::tiny_run();
    o.data_path = (dir / "c").string();
    o.config.vocab_size = map->size();
    o.epochs = 1;  // one whole epoch: its end writes the sample
    o.final_eval_full = true;
    o.out_dir = (dir / "run").string();
    o.start_context = "I had";
    o.sample_tokens = 5;
    {
        // A shard run has no text loaders: the accessors say so with null
        // (they dereferenced a null pointer before, issue 35).
        Trainer t(o);
        CHECK(t.shards() != nullptr);
        CHECK(t.train_loader() == nullptr);
        CHECK(t.val_loader() == nullptr);
        CHECK(t.vocab_map() != nullptr);
    }
    TrainResult r = train_model(o);
    REQUIRE(r.samples.size() == 1);
    CHECK(r.samples[0].rfind("I had", 0) == 0);
    ShardCorpus corpus((dir / "c").string(), o.config.context_length, 1, false, 0);
    CHECK(r.full_val_tokens == corpus.val_ds->num_windows() * o.config.context_length);
    CHECK(std::isfinite(r.full_val_loss));
    Csv docs = read_csv(o.out_dir + "/final_eval.csv");
    double loss = 0, tokens = 0;
    for (size_t i = 0; i < docs.rows.size(); ++i) {
        loss += docs.at(i, "loss_sum");
        tokens += docs.at(i, "tokens");
    }
    CHECK(tokens == r.full_val_tokens);
    CHECK(loss / tokens == Approx(r.full_val_loss).epsilon(1e-9));
    CHECK(docs.rows.size() > 1);  // split into documents at the end-of-text ids
    fs::remove_all(dir);
}
