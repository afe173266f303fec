// Training pipeline: tokenizer vs tiktoken, malformed vocab files, dataset and
// split, loader randomness vs PyTorch, a trajectory vs PyTorch, resume bit for
// bit, overfitting a short text.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "models/checkpoint.h"
#include "test_util.h"
#include "train/data/text_loader.h"
#include "train/dist/grad_reducer.h"
#include "train/tokenizer/tokenizer.h"
#include "train/loop/trainer.h"
#include "train_test_util.h"

using namespace tg;
using namespace tg::train;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json fixture(const std::string& name) {
    std::ifstream f(test::source_path("tests/fixtures/" + name));
    REQUIRE(f.good());
    return json::parse(f);
}

const Tokenizer& gpt2() {
    static Tokenizer t(test::source_path("data/encoder.json"), test::source_path("data/vocab.bpe"));
    return t;
}

std::string b64decode(const std::string& s) {
    static const std::string abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    int val = 0, bits = -8;
    for (char c : s) {
        if (c == '=') break;
        val = (val << 6) + static_cast<int>(abc.find(c));
        bits += 6;
        if (bits >= 0) {
            out.push_back(static_cast<char>((val >> bits) & 0xFF));
            bits -= 8;
        }
    }
    return out;
}

fs::path scratch(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("tapegrad_train_" + std::to_string(::getpid())) / name;
    fs::create_directories(d);
    return d;
}

}  // namespace

TEST_CASE("tokenizer matches tiktoken's gpt2 encoding on varied strings", "[tokenizer]") {
    json fx = fixture("tokenizer.json");
    REQUIRE(fx["cases"].size() >= 20);
    for (auto& c : fx["cases"]) {
        std::string bytes = b64decode(c["bytes_b64"]);
        INFO("input bytes (base64): " << c["bytes_b64"].get<std::string>());
        auto ord = gpt2().encode(bytes, false);
        CHECK(ord == c["ordinary"].get<std::vector<int64_t>>());
        CHECK(gpt2().encode(bytes, true) == c["special"].get<std::vector<int64_t>>());
        CHECK(gpt2().decode(ord) == Tokenizer::sanitize_utf8(bytes));  // exact inverse on valid UTF-8
    }
}

TEST_CASE("the-verdict.txt: 5145 tokens, identical to tiktoken's", "[tokenizer]") {
    json fx = fixture("tokenizer.json");
    std::string text = read_text_file(test::source_path("data/the-verdict.txt"));
    auto ids = gpt2().encode(text);
    CHECK(ids.size() == 5145);
    CHECK(ids == fx["verdict_ids"].get<std::vector<int64_t>>());
    CHECK(gpt2().decode(ids) == text);
    auto [tr, va] = split_train_val(text, 0.9);
    CHECK(gpt2().encode(tr, true) == fx["verdict_train_ids"].get<std::vector<int64_t>>());
    CHECK(gpt2().encode(va, true) == fx["verdict_val_ids"].get<std::vector<int64_t>>());
    CHECK(gpt2().encode("<|endoftext|>", true) == std::vector<int64_t>{50256});
    REQUIRE_THROWS_WITH(gpt2().decode({50257}), Catch::Contains("unknown token id 50257"));
}

TEST_CASE("malformed vocab and merges files are rejected naming file and line", "[tokenizer][errors]") {
    fs::path d = scratch("vocab");
    auto write = [&](const std::string& name, const std::string& text) {
        std::ofstream((d / name).string()) << text;
        return (d / name).string();
    };
    std::string enc_ok = write("enc.json", R"({"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3})");
    std::string bpe_ok = write("ok.bpe", "#version: 0.2\na b\n");
    CHECK(Tokenizer(enc_ok, bpe_ok).encode("ab") == std::vector<int64_t>{2});
    // A vocabulary without the byte 'b': "ab" is still a token of its own, but a
    // 'b' that no token covers is an error naming the cause.
    std::string enc_no_b = write("no_b.json", R"({"a": 0, "ab": 1, "<|endoftext|>": 2})");
    Tokenizer no_b(enc_no_b, bpe_ok);
    CHECK(no_b.encode("ab") == std::vector<int64_t>{1});
    CHECK(no_b.encode("a") == std::vector<int64_t>{0});
    REQUIRE_THROWS_WITH(no_b.encode("b"), Catch::Contains("no token"));
    REQUIRE_THROWS_WITH(no_b.encode("ba"), Catch::Contains("no token"));
    std::string enc_bad = write("bad.json", "{\"a\": 0,\n\"b\": 1,\n\"c\" 2}");
    REQUIRE_THROWS_WITH(Tokenizer(enc_bad, bpe_ok),
                        Catch::Contains("bad.json:3") && Catch::Contains("not valid JSON"));
    std::string enc_id = write("id.json", R"({"a": 0, "b": 7})");
    REQUIRE_THROWS_WITH(Tokenizer(enc_id, bpe_ok), Catch::Contains("id.json") && Catch::Contains("outside"));
    std::string bpe_bad = write("bad.bpe", "#version: 0.2\na b\nab\n");
    REQUIRE_THROWS_WITH(Tokenizer(enc_ok, bpe_bad),
                        Catch::Contains("bad.bpe:3") && Catch::Contains("two symbols"));
    std::string bpe_missing = write("missing.bpe", "#version: 0.2\na b\nb a\n");
    REQUIRE_THROWS_WITH(Tokenizer(enc_ok, bpe_missing),
                        Catch::Contains("missing.bpe:3") && Catch::Contains("not in"));
    REQUIRE_THROWS_WITH(Tokenizer((d / "nope.json").string(), bpe_ok),
                        Catch::Contains("cannot open") && Catch::Contains("nope.json"));
    fs::remove_all(d.parent_path());
}

TEST_CASE("sliding windows, targets shifted by one, 90% split on characters", "[data]") {
    std::vector<int64_t> ids(23);
    for (int i = 0; i < 23; ++i) ids[i] = 100 + i;
    WindowDataset ds(ids, 5, 4);  // starts 0, 4, 8, 12, 16 (< 23 - 5)
    REQUIRE(ds.size() == 5);
    std::vector<int64_t> in(5), tg(5);
    ds.window(4, in.data(), tg.data());
    CHECK(in == std::vector<int64_t>{116, 117, 118, 119, 120});
    CHECK(tg == std::vector<int64_t>{117, 118, 119, 120, 121});
    DataLoader keep(ds, 2, false, false), drop(ds, 2, false, true);
    CHECK(keep.num_batches() == 3);
    CHECK(drop.num_batches() == 2);
    Generator g(1);
    auto order = keep.begin_iteration(g);
    CHECK(keep.batch(order, 2).input.shape == Shape{1, 5});           // the short last batch
    auto [a, b] = split_train_val("h\xC3\xA9llo w\xC3\xB6rld", 0.5);  // 11 characters, 13 bytes
    CHECK(a == "h\xC3\xA9llo");
    CHECK(b == " w\xC3\xB6rld");
}

TEST_CASE("loader orders and generator use match torch's DataLoader", "[data][torch]") {
    json fx = fixture("loader.json");
    manual_seed(fx["seed"].get<uint64_t>());
    std::vector<int64_t> ids(38);
    for (int i = 0; i < 38; ++i) ids[i] = i;
    WindowDataset ds(ids, 3, 4);  // 9 windows (starts 0, 4, ..., 32 < 38 - 3); window i starts at 4i
    REQUIRE(ds.size() == fx["n"].get<int64_t>());
    DataLoader shuffled(ds, 2, true, true), plain(ds, 2, false, false);
    for (auto& ev : fx["events"]) {
        std::string kind = ev["kind"];
        DataLoader& l = kind == "eval_plain" ? plain : shuffled;
        auto order = l.begin_iteration(default_generator());
        auto want = ev["batches"].get<std::vector<std::vector<int64_t>>>();
        for (size_t k = 0; k < want.size(); ++k) {
            Batch b = l.batch(order, static_cast<int64_t>(k));
            std::vector<int64_t> got;
            for (int64_t r = 0; r < b.input.shape[0]; ++r) got.push_back(b.input.data[r * 3] / 4);
            INFO(kind << " batch " << k);
            CHECK(got == want[k]);
        }
    }
    std::vector<float> r(4);
    default_generator().fill_uniform(r.data(), 4, 0.0, 1.0);
    std::vector<uint32_t> bits;
    for (float v : r) bits.push_back(std::bit_cast<uint32_t>(v));
    CHECK(bits == fx["rand_after_bits"].get<std::vector<uint32_t>>());
}

TEST_CASE("same seed, same batch order, different seed, different order", "[data]") {
    std::vector<int64_t> ids(100);
    WindowDataset ds(ids, 4, 4);
    DataLoader l(ds, 2, true, true);
    Generator a(5), b(5), c(6);
    auto oa = l.begin_iteration(a), ob = l.begin_iteration(b), oc = l.begin_iteration(c);
    CHECK(oa == ob);
    CHECK(oa != oc);
}

TEST_CASE("first 20 losses equal PyTorch's from the same weights (dropout 0, no shuffle)", "[train][torch]") {
    json fx = fixture("train_small_losses.json");
    TrainOptions o = test::tiny_run();
    o.config.drop_rate = 0;
    o.shuffle = false;
    o.eval_freq = 0;
    o.max_steps = 20;
    o.init_from = test::source_path("tests/fixtures/train_small_init.safetensors");
    auto res = train_model(o);
    auto want = fx["losses"].get<std::vector<double>>();
    REQUIRE(res.step_losses.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        INFO("step " << i);
        CHECK(std::fabs(res.step_losses[i] - want[i]) <= 1e-3);
    }
}

TEST_CASE("a resumed run continues bit for bit (dropout on, shuffled)", "[train][checkpoint]") {
    fs::path d = scratch("resume");
    TrainOptions o = test::tiny_run();
    o.max_steps = 12;  // evaluations (every 5 steps) and dropout draw from the generator in between
    o.save_path = (d / "full.safetensors").string();
    train_model(o);
    TrainOptions first = test::tiny_run();
    first.max_steps = 5;
    first.save_path = (d / "half.safetensors").string();
    train_model(first);
    TrainOptions second = test::tiny_run();
    second.max_steps = 12;
    second.resume_path = first.save_path;
    second.save_path = (d / "resumed.safetensors").string();
    train_model(second);
    auto a = models::read_safetensors(o.save_path), b = models::read_safetensors(second.save_path);
    REQUIRE(a.f32.size() == b.f32.size());
    for (size_t i = 0; i < a.f32.size(); ++i) {
        INFO(a.f32[i].first);
        CHECK(a.f32[i].first == b.f32[i].first);
        CHECK(a.f32[i].second.to_vector() == b.f32[i].second.to_vector());
    }
    // The position and generator state agree exactly (the clock may not).
    CHECK(test::resume_position(a) == test::resume_position(b));
    fs::remove_all(d.parent_path());
}

TEST_CASE("resume across an epoch boundary is bit-identical too", "[train][checkpoint]") {
    fs::path d = scratch("epoch");
    std::string text = read_text_file(test::source_path("data/the-verdict.txt")).substr(0, 1500);
    std::ofstream((d / "short.txt").string()) << text;
    auto run = [&](int64_t steps, const std::string& save, const std::string& resume) {
        TrainOptions o = test::tiny_run();
        o.data_path = (d / "short.txt").string();
        o.epochs = 3;
        o.max_steps = steps;
        o.save_path = save;
        o.resume_path = resume;
        return train_model(o);
    };
    auto full = run(-1, (d / "a.safetensors").string(), "");
    REQUIRE(full.samples.size() == 3);
    run(full.steps / 3 + 1, (d / "b.safetensors").string(), "");  // stops inside epoch 2
    auto rest = run(-1, (d / "c.safetensors").string(), (d / "b.safetensors").string());
    auto a = models::read_safetensors((d / "a.safetensors").string()),
         c = models::read_safetensors((d / "c.safetensors").string());
    for (size_t i = 0; i < a.f32.size(); ++i)
        CHECK(a.f32[i].second.to_vector() == c.f32[i].second.to_vector());
    CHECK(rest.samples.back() == full.samples.back());
    fs::remove_all(d.parent_path());
}

TEST_CASE("the tiny preset overfits a short text, and its epoch samples are the same with the KV cache",
          "[train]") {
    fs::path d = scratch("overfit");
    std::string text = read_text_file(test::source_path("data/the-verdict.txt")).substr(0, 600);
    std::ofstream((d / "short.txt").string()) << text;
    TrainOptions o = test::tiny_run();
    o.config = models::preset("tiny");
    o.config.context_length = 32;
    o.config.drop_rate = 0;
    o.data_path = (d / "short.txt").string();
    o.batch_size = 2;
    o.lr = 2e-3;
    o.epochs = 40;
    o.eval_freq = 0;
    o.sample_tokens = 40;  // 4 + 40 tokens: past the 32-token window, so the cache restarts
    o.sample_kv_cache = "check";
    auto res = train_model(o);
    INFO("first loss " << res.step_losses.front() << ", last " << res.step_losses.back());
    CHECK(res.step_losses.front() > 10.0);
    CHECK(res.step_losses.back() < 0.5);  // memorised: from ln(50257) = 10.8 to below 0.5
    // --sample-kv-cache check: every epoch's cached sample equals the book's.
    CHECK(res.samples.size() == 40);
    CHECK(res.sample_cache_equal == 40);
    CHECK(res.sample_cache_differ == 0);
    // alt1 caches its layer inputs instead of keys: a few epochs check that path.
    o.config.attention = "alt1";
    o.epochs = 4;
    res = train_model(o);
    CHECK(res.sample_cache_equal == 4);
    CHECK(res.sample_cache_differ == 0);
    fs::remove_all(d.parent_path());
}

TEST_CASE("dropout-on trajectory: same random numbers as PyTorch, step for step (mha and alt1)",
          "[train][torch][random]") {
    // tools/make_dropout_fixture.py: the book's flow with dropout 0.1, a shuffled
    // loader and evaluations that read the train loader, 12 steps. Matching to 1e-4
    // needs the same init, dropout masks and batch order as PyTorch.
    json fx = fixture("dropout_trajectory.json");
    for (const char* att : {"mha", "alt1"}) {
        SECTION(att) {
            TrainOptions o = test::tiny_run();
            o.config = models::preset("tiny");
            o.config.context_length = 32;
            o.config.attention = att;
            o.max_steps = 12;
            o.eval_freq = 5;
            o.eval_iter = 5;
            o.seed = 123;
            auto res = train_model(o);
            auto want = fx[att]["losses"].get<std::vector<double>>();
            REQUIRE(res.step_losses.size() == want.size());
            for (size_t i = 0; i < want.size(); ++i) {
                INFO("step " << i);
                CHECK(std::fabs(res.step_losses[i] - want[i]) <= 1e-4);
            }
            auto evals = fx[att]["evals"];
            REQUIRE(res.evals.size() == evals.size());
            for (size_t i = 0; i < evals.size(); ++i) {
                CHECK(res.evals[i].step == evals[i][0].get<int64_t>());
                CHECK(std::fabs(res.evals[i].train_loss - evals[i][1].get<double>()) <= 1e-4);
                CHECK(std::fabs(res.evals[i].val_loss - evals[i][2].get<double>()) <= 1e-4);
            }
        }
    }
}

namespace {

// Records the order in which the Trainer calls its observers.
struct Recorder : StepObserver {
    std::vector<std::string> calls;
    void begin_step(int64_t step) override { calls.push_back("begin " + std::to_string(step)); }
    void after_backward() override { calls.push_back("backward"); }
    void before_update() override { calls.push_back("before_update"); }
    void after_update(double) override { calls.push_back("after_update"); }
    void end_step(const StepInfo& i) override { calls.push_back("end " + std::to_string(i.step)); }
    void end_epoch(int64_t e) override { calls.push_back("epoch " + std::to_string(e)); }
    void end_run() override { calls.push_back("run"); }
};

}  // namespace

TEST_CASE("Trainer: train_step is one step, observers see each phase, steps numbered as metrics.csv",
          "[train][trainer]") {
    fs::path d = scratch("observers");
    TrainOptions o = test::tiny_run();
    o.max_steps = 2;
    o.save_path = (d / "two.safetensors").string();
    Trainer t(o);
    Recorder rec;
    t.add_observer(&rec);
    TrainResult res = t.run();
    std::vector<std::string> want = {"begin 0", "backward", "before_update", "after_update", "end 0",
                                     "begin 1", "backward", "before_update", "after_update", "end 1",
                                     "run"};
    CHECK(rec.calls == want);
    CHECK(res.steps == 2);
    CHECK(t.position().global_step == 1);

    // Resumed: numbering continues; an epoch's end is reported once per epoch.
    TrainOptions r = test::tiny_run();
    r.resume_path = o.save_path;
    r.epochs = 1;
    Trainer t2(r);
    Recorder rec2;
    t2.add_observer(&rec2);
    t2.run();
    REQUIRE(rec2.calls.size() > 3);
    CHECK(rec2.calls.front() == "begin 2");
    CHECK(std::count(rec2.calls.begin(), rec2.calls.end(), "epoch 0") == 1);
    CHECK(rec2.calls.back() == "run");

    // train_step alone moves the weights and tells no one that a step ended.
    TrainOptions s = test::tiny_run();
    Trainer t3(s);
    Recorder rec3;
    t3.add_observer(&rec3);
    auto before = t3.model().named_parameters().front().second.to_vector();
    std::vector<int64_t> order = t3.next_train_order();
    auto stats = t3.train_step(t3.train_loader()->batch(order, 0));
    CHECK(std::isfinite(stats.loss));
    CHECK(stats.grad_norm > 0);
    CHECK(t3.model().named_parameters().front().second.to_vector() != before);
    CHECK(rec3.calls == std::vector<std::string>{"begin 0", "backward", "before_update", "after_update"});
    fs::remove_all(d.parent_path());
}

// train/dist/grad_reducer.h: a parameter the loss does not use has no gradient after the
// reducer, as after a plain backward (PyTorch's None: the optimizer skips it),
// never a zero gradient. The flags that carry this are summed with the
// gradients, so one process (world 1, the sums the identity) exercises the same
// pack/unpack as N ranks; under mpirun a gradient some rank gave wins.
TEST_CASE("the gradient reducer leaves an unused parameter without a gradient", "[ddp]") {
    Tensor used = test::leaf({4}, 21), unused = test::leaf({3}, 22), other = test::leaf({2}, 23);
    // Small buckets (8 floats): the unused parameter shares a bucket or not, both covered.
    for (double mb : {8 * 4e-6, 1.0}) {
        INFO("bucket MB " << mb);
        train::GradReducer red({used, unused, other}, mb);
        Tensor loss = add(sum(mul(used, used)), sum(other));
        red.begin();
        loss.backward();
        red.finish();
        REQUIRE(used.grad().defined());
        CHECK_FALSE(unused.grad().defined());
        REQUIRE(other.grad().defined());
        std::vector<float> u = used.to_vector(), g = used.grad().to_vector();
        for (size_t i = 0; i < u.size(); ++i) CHECK(g[i] == 2 * u[i]);
        for (float x : other.grad().to_vector()) CHECK(x == 1.0f);
        for (Tensor t : {used, unused, other}) t.zero_grad();
    }
}
