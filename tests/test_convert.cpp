// --qk-dim, `convert --to alt1` and `compare --fork-at` (issue 13):
//  - mha with --qk-dim R: shapes follow R, names do not; the config records R
//    and refuses R < 1, R > emb_dim and R with alt1; the KV cache agrees with
//    the full forward (generate). PyTorch conformance is in test_models.
//  - the conversion computes the same function: logits of the alt1 model equal
//    the mha model's to 1e-5 relative, with and without qkv_bias, for R = HS
//    and R != HS, on attention made sharp enough that a wrong S (the transposed
//    product) is far off; the checkpoint conversion is refused for non-mha and
//    for mha without out_proj, and writes alt1 + out_proj metadata, no optimizer.
//  - the fork on the tiny preset: at the fork step both branches' losses are
//    equal (same function, same batch), afterwards both run and write their
//    files; --fork-at 0 and past the run are refused.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

#include "models/checkpoint.h"
#include "models/convert.h"
#include "test_util.h"
#include "train/study/same_function_fork.h"

using namespace tg;
using namespace tg::models;
namespace fs = std::filesystem;

namespace {

GPTConfig tiny_mha(bool qkv_bias, std::optional<int64_t> qk_dim) {
    GPTConfig c = preset("tiny");  // emb 64, 4 heads of 16, 2 layers, context 64
    c.vocab_size = 300;
    c.drop_rate = 0;
    c.qkv_bias = qkv_bias;
    c.qk_dim = qk_dim;
    return c;
}

// Scale W_query and W_key (and their biases) so that the attention weights are
// far from uniform: an error in S then shows in the logits.
void sharpen(GPTModel& m, float s) {
    for (auto& [n, t] : m.named_parameters())
        if (n.find("W_query") != std::string::npos || n.find("W_key") != std::string::npos)
            for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] *= s;
}

double rel_diff(const Tensor& a, const Tensor& b) {
    std::vector<float> x = a.to_vector(), y = b.to_vector();
    REQUIRE(x.size() == y.size());
    double d = 0, n = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        d += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
        n += static_cast<double>(y[i]) * y[i];
    }
    return std::sqrt(d / n);
}

const Ids kIds{{2, 12},
               {5, 17, 250, 3, 3, 99, 0, 41, 8, 8, 1, 299, 4, 22, 6, 17, 30, 31, 200, 7, 7, 7, 64, 2}};

Tensor logits_of(GPTModel& m) {
    NoGradGuard ng;
    m.eval();
    return m.forward(kIds);
}

std::string tmp_dir(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("tapegrad_convert_" + std::to_string(::getpid())) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d.string();
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("qk_dim: W_query and W_key are NH R x C, names and the rest unchanged", "[qk_dim]") {
    GPTConfig c = tiny_mha(true, 24);
    GPTModel m(c);
    std::map<std::string, Shape> shapes;
    for (auto& [n, t] : m.state_dict()) shapes[n] = t.shape();
    CHECK(shapes.at("trf_blocks.0.att.W_query.weight") == Shape{4 * 24, 64});
    CHECK(shapes.at("trf_blocks.1.att.W_key.weight") == Shape{4 * 24, 64});
    CHECK(shapes.at("trf_blocks.1.att.W_key.bias") == Shape{4 * 24});
    CHECK(shapes.at("trf_blocks.0.att.W_value.weight") == Shape{64, 64});
    CHECK(shapes.at("trf_blocks.0.att.out_proj.weight") == Shape{64, 64});
    GPTModel book(tiny_mha(true, {}));
    CHECK(book.state_dict().size() == m.state_dict().size());
    // 2 layers x 2 factors x (NH (R - HS) C + NH (R - HS) bias) more parameters
    CHECK(m.num_parameters() - book.num_parameters() == 2 * 2 * (4 * 8 * 64 + 4 * 8));
}

TEST_CASE("qk_dim: refused below 1, above emb_dim and with alt1", "[qk_dim][errors]") {
    GPTConfig c = tiny_mha(false, 0);
    CHECK_THAT(error_of([&] { GPTModel m(c); }),
               Catch::Contains("qk_dim (--qk-dim) must be in 1 .. emb_dim"));
    c.qk_dim = 65;
    CHECK_THAT(error_of([&] { GPTModel m(c); }), Catch::Contains("must be in 1 .. emb_dim 64"));
    c.qk_dim = 16;
    c.attention = "alt1";
    CHECK_THAT(error_of([&] { GPTModel m(c); }),
               Catch::Contains("sets the query/key width of attention mha"));
}

TEST_CASE("qk_dim in the checkpoint config: recorded, read back, compared like every field", "[qk_dim]") {
    GPTConfig c = tiny_mha(false, 40);
    CHECK_THAT(config_to_json(c), Catch::Contains("\"qk_dim\":40"));
    GPTConfig back = config_from_json(config_to_json(c));
    REQUIRE(back.qk_dim);
    CHECK(*back.qk_dim == 40);
    CHECK(config_diff(back, c).empty());
    // A file from before qk_dim (no such key) is the book's R = HS.
    GPTConfig book = tiny_mha(false, {});
    std::string old = config_to_json(book);
    old.erase(old.find(",\"qk_dim\":16"), std::string(",\"qk_dim\":16").size());
    REQUIRE(old.find("qk_dim") == std::string::npos);
    CHECK(config_to_json(config_from_json(old)) == config_to_json(book));
    CHECK_THAT(config_diff(book, c), Catch::Contains("qk_dim 16 in the file, 40 asked"));
    // --qk-dim equal to HS is the book's model: the same config.
    CHECK(config_diff(tiny_mha(false, 16), book).empty());
}

TEST_CASE("qk_dim: the KV cache decodes what the full forward computes", "[qk_dim][kv_cache]") {
    for (int64_t r : {5, 40}) {
        manual_seed(11);
        GPTModel m(tiny_mha(true, r));
        m.eval();
        NoGradGuard ng;
        Ids ids{{1, 12}, {5, 17, 250, 3, 3, 99, 0, 41, 8, 8, 1, 299}};
        Tensor full = m.forward(ids);
        KVCache cache;
        m.forward_cached(Ids{{1, 7}, {5, 17, 250, 3, 3, 99, 0}}, cache);
        Tensor last;
        for (int64_t t = 7; t < 12; ++t) last = m.forward_cached(Ids{{1, 1}, {ids.data[t]}}, cache);
        Tensor want = full.slice(1, 11, 12);
        INFO("qk_dim " << r);
        CHECK(rel_diff(last, want) <= 1e-5);
    }
}

TEST_CASE("convert to alt1: the same logits to 1e-5 relative, with and without qkv_bias, any qk_dim",
          "[convert]") {
    bool qkv_bias = GENERATE(false, true);
    auto qk = GENERATE(std::optional<int64_t>{}, std::optional<int64_t>{5}, std::optional<int64_t>{64});
    manual_seed(21);
    GPTModel mha(tiny_mha(qkv_bias, qk));
    sharpen(mha, 6.0f);
    std::string rng_before = default_generator().state();
    auto alt1 = convert_to_alt1(mha);
    CHECK(default_generator().state() == rng_before);  // the throwaway init left no trace
    CHECK(alt1->config().attention == "alt1");
    CHECK(alt1->config().has_out_proj());
    CHECK_FALSE(alt1->config().qk_dim);
    Tensor a = logits_of(mha), b = logits_of(*alt1);
    INFO("qkv_bias " << qkv_bias << " qk_dim " << qk.value_or(16));
    CHECK(rel_diff(b, a) <= 1e-5);
    // The test can fail: S = Wq^T Wk (transposed) gives other attention, other logits.
    for (auto& blk : alt1->trf_blocks)
        for (auto& h : static_cast<nn::MHA_alt1&>(*blk->att).heads) {
            Tensor& S = h->S->weight;
            for (int64_t i = 0; i < 64; ++i)
                for (int64_t j = i + 1; j < 64; ++j) std::swap(S.data()[i * 64 + j], S.data()[j * 64 + i]);
        }
    CHECK(rel_diff(logits_of(*alt1), a) > 1e-3);
}

TEST_CASE("convert: a checkpoint file, atomically, alt1 + out_proj in its metadata, bad inputs refused",
          "[convert][errors]") {
    std::string d = tmp_dir("ckpt");
    manual_seed(22);
    GPTModel mha(tiny_mha(true, 24));
    sharpen(mha, 4.0f);
    save_checkpoint(d + "/mha.safetensors", mha);
    GPTConfig out = convert_checkpoint_to_alt1(d + "/mha.safetensors", d + "/alt1.safetensors");
    CHECK(out.attention == "alt1");
    SafeTensors st = read_safetensors(d + "/alt1.safetensors");
    GPTConfig saved = checkpoint_config(st, d + "/alt1.safetensors");
    CHECK(saved.attention == "alt1");
    CHECK(saved.has_out_proj());
    CHECK(saved.qkv_bias);
    CHECK_THAT(st.metadata.at("tapegrad.converted_from"), Catch::Contains("\"qk_dim\":24"));
    for (auto& [n, t] : st.f32) CHECK(n.rfind("optimizer.", 0) != 0);  // AdamW state is not converted
    GPTModel back(saved);
    load_model_weights(back, st, d + "/alt1.safetensors");
    CHECK(rel_diff(logits_of(back), logits_of(mha)) <= 1e-5);
    // Refused with the reason, and nothing written.
    CHECK_THAT(error_of([&] { convert_checkpoint_to_alt1(d + "/alt1.safetensors", d + "/x.safetensors"); }),
               Catch::Contains("the input must be an mha model, this one is attention 'alt1'"));
    GPTConfig np = tiny_mha(false, {});
    np.out_proj = false;
    GPTModel noproj(np);
    save_checkpoint(d + "/noproj.safetensors", noproj);
    CHECK_THAT(error_of([&] { convert_checkpoint_to_alt1(d + "/noproj.safetensors", d + "/x.safetensors"); }),
               Catch::Contains("has no out_proj"));
    CHECK_FALSE(fs::exists(d + "/x.safetensors"));
    for (auto& e : fs::directory_iterator(d))
        CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
}

namespace {

train::TrainOptions fork_run() {
    train::TrainOptions o;
    o.config = preset("tiny");
    o.config.drop_rate = 0;
    o.data_path = test::source_path("data/the-verdict.txt");
    o.vocab_dir = test::source_path("data");
    o.max_length = 16;
    o.epochs = 1;
    o.max_steps = 7;
    o.quiet = true;
    o.eval_freq = 3;
    o.eval_iter = 1;
    o.sample_tokens = 2;
    o.probe_every = 2;
    o.lr = 1e-3;
    return o;
}

// metrics.csv: step -> the row's fields by column name.
std::map<int64_t, std::map<std::string, std::string>> metrics(const std::string& path) {
    std::ifstream f(path);
    REQUIRE(f);
    std::string line;
    std::getline(f, line);
    std::vector<std::string> cols;
    std::stringstream hs(line);
    for (std::string c; std::getline(hs, c, ',');) cols.push_back(c);
    std::map<int64_t, std::map<std::string, std::string>> out;
    while (std::getline(f, line)) {
        INFO(path << ": " << line);
        std::stringstream ls(line);
        std::map<std::string, std::string> row;
        size_t i = 0;
        for (std::string v; std::getline(ls, v, ',') && i < cols.size(); ++i) row[cols[i]] = v;
        int64_t step = std::stoll(row.at("step"));
        CHECK(out.count(step) == 0);  // one row per step: no branch's rows twice
        out[step] = row;
    }
    return out;
}

}  // namespace

TEST_CASE("compare fork-at: equal losses at the fork, both branches run on to the end", "[fork]") {
    std::string d = tmp_dir("fork");
    train::TrainOptions o = fork_run();
    train::ForkResult r = train::train_fork(o, d, 3);
    REQUIRE(r.stopped.empty());
    CHECK(r.trunk.steps == 3);
    CHECK(r.mha.steps == 7);  // counts continue the trunk's
    CHECK(r.alt1.steps == 7);
    auto m = metrics(d + "/mha/metrics.csv"), a = metrics(d + "/alt1/metrics.csv");
    REQUIRE(m.size() == 7);
    REQUIRE(a.size() == 7);
    // Before the fork: one trunk (alt1's rows are the trunk's copy).
    for (int64_t s = 0; s < 3; ++s) CHECK(m.at(s).at("batch_loss") == a.at(s).at("batch_loss"));
    // At the fork: the same function on the same batch, before either updates.
    double lm = std::stod(m.at(3).at("batch_loss")), la = std::stod(a.at(3).at("batch_loss"));
    CHECK(std::fabs(lm - la) <= 1e-5 * std::fabs(lm));
    // Afterwards the parametrisations move apart (under one lr, from one point).
    CHECK(m.at(6).at("batch_loss") != a.at(6).at("batch_loss"));
    for (const char* f : {"/mha/model.safetensors", "/alt1/model.safetensors", "/mha/dynamics.csv",
                          "/alt1/dynamics.csv", "/fork-mha.safetensors", "/fork-alt1.safetensors"}) {
        INFO(f);
        CHECK(fs::exists(d + f));
    }
    SafeTensors st = read_safetensors(d + "/alt1/model.safetensors");
    CHECK(checkpoint_config(st, "alt1").attention == "alt1");
    CHECK(checkpoint_config(st, "alt1").has_out_proj());
}

TEST_CASE("compare fork-at: 0, past the run, dropout, alt1 and no out_proj are refused", "[fork][errors]") {
    std::string d = tmp_dir("fork_bad");
    train::TrainOptions o = fork_run();
    CHECK_THAT(error_of([&] { train::train_fork(o, d, 0); }),
               Catch::Contains("--fork-at: must be a step >= 1"));
    CHECK_THAT(
        error_of([&] { train::train_fork(o, d, 7); }),
        Catch::Contains("the run has 7 steps in all; the fork must come before its last step (1 .. 6)"));
    CHECK_FALSE(fs::exists(d + "/mha/metrics.csv"));
    train::TrainOptions drop = o;
    drop.config.drop_rate = 0.1f;
    CHECK_THAT(error_of([&] { train::check_fork(drop, 3); }), Catch::Contains("runs with dropout 0"));
    train::TrainOptions alt = o;
    alt.config.attention = "alt1";
    CHECK_THAT(error_of([&] { train::check_fork(alt, 3); }), Catch::Contains("the trunk is mha"));
    train::TrainOptions np = o;
    np.config.out_proj = false;
    CHECK_THAT(error_of([&] { train::check_fork(np, 3); }), Catch::Contains("has no out_proj"));
}
