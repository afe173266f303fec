// safetensors checkpoints: round trip with optimizer state, strict loading, a
// table of corrupt files each rejected with its reason, atomic writes.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "models/checkpoint.h"
#include "models/generate.h"
#include "optim/adamw.h"
#include "test_util.h"

using namespace tg;
using namespace tg::models;
namespace fs = std::filesystem;

namespace {

fs::path tmpdir() {
    fs::path d = fs::temp_directory_path() / ("tapegrad_test_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
}

GPTConfig small() {
    GPTConfig c = preset("tiny");
    c.vocab_size = 40;
    c.context_length = 8;
    c.emb_dim = 16;
    c.n_heads = 2;
    c.n_layers = 1;
    c.drop_rate = 0;
    return c;
}

std::string header_file(const std::string& header_json, size_t data_bytes) {
    std::string out(8, '\0');
    uint64_t n = header_json.size();
    std::memcpy(out.data(), &n, 8);
    return out + header_json + std::string(data_bytes, '\0');
}

}  // namespace

TEST_CASE("checkpoint round trip restores weights, config and AdamW state", "[checkpoint]") {
    fs::path dir = tmpdir();
    manual_seed(1);
    GPTModel a(small());
    std::vector<optim::ParamRef> refs;
    for (auto& [n, t] : a.named_parameters()) refs.push_back({n, t});
    optim::AdamW opt(refs, {.lr = 1e-3});
    Ids ids{{1, 6}, {1, 2, 3, 4, 5, 6}};
    cross_entropy(a.forward(ids), ids).backward();
    opt.step();
    std::string path = (dir / "ck.safetensors").string();
    save_checkpoint(path, a, &opt, {{"note", "hello"}});

    SafeTensors st = read_safetensors(path);
    CHECK(st.metadata.at("note") == "hello");
    GPTConfig c = checkpoint_config(st, path);
    CHECK(config_to_json(c) == config_to_json(a.config()));
    manual_seed(2);
    GPTModel b(c);
    load_model_weights(b, st, path);
    for (auto& [n, t] : a.state_dict()) CHECK(t.to_vector() == st.get(n).to_vector());
    std::vector<optim::ParamRef> refs_b;
    for (auto& [n, t] : b.named_parameters()) refs_b.push_back({n, t});
    optim::AdamW opt_b(refs_b, {.lr = 1e-3});
    load_optimizer_state(opt_b, "adamw", st, path);
    CHECK(opt_b.steps() == 1);
    // one more identical step on both: identical weights
    for (auto* m : {&a, &b}) {
        m->zero_grad();
        cross_entropy(m->forward(ids), ids).backward();
    }
    opt.step();
    opt_b.step();
    auto pa = a.named_parameters(), pb = b.named_parameters();
    for (size_t i = 0; i < pa.size(); ++i) CHECK(pa[i].second.to_vector() == pb[i].second.to_vector());
    fs::remove_all(dir);
}

TEST_CASE("loading is strict: missing, unexpected and mis-shaped tensors are errors", "[checkpoint]") {
    fs::path dir = tmpdir();
    GPTModel m(small());
    auto sd = m.state_dict();
    std::string p1 = (dir / "missing.safetensors").string();
    write_safetensors(p1, {sd.begin() + 1, sd.end()});
    REQUIRE_THROWS_WITH(load_model_weights(m, read_safetensors(p1), p1),
                        Catch::Contains("missing tensor 'tok_emb.weight'") && Catch::Contains(p1));
    std::string p2 = (dir / "extra.safetensors").string();
    auto extra = sd;
    extra.emplace_back("bogus.weight", Tensor::zeros({2}));
    write_safetensors(p2, extra);
    REQUIRE_THROWS_WITH(load_model_weights(m, read_safetensors(p2), p2),
                        Catch::Contains("unexpected tensor 'bogus.weight'"));
    std::string p3 = (dir / "shape.safetensors").string();
    auto bad = sd;
    bad[0].second = Tensor::zeros({3, 3});
    write_safetensors(p3, bad);
    REQUIRE_THROWS_WITH(load_model_weights(m, read_safetensors(p3), p3), Catch::Contains("tok_emb.weight") &&
                                                                             Catch::Contains("[3, 3]") &&
                                                                             Catch::Contains("[40, 16]"));
    fs::remove_all(dir);
}

TEST_CASE("corrupt safetensors files are rejected with the reason", "[checkpoint]") {
    struct Case {
        const char* name;
        std::string bytes;
        const char* reason;
    };
    std::string ok_entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
    std::string full = header_file("{" + ok_entry + "}", 8);
    std::vector<Case> cases = {
        {"empty file", "", "shorter than the 8-byte header length"},
        {"truncated length", std::string(5, '\0'), "shorter than the 8-byte header length"},
        {"header length past the end",
         [&] {
             std::string b = header_file("{}", 0);
             b[0] = 0x7f;
             return b;
         }(),
         "runs past the end"},
        {"bad JSON", header_file("{\"a\":", 0), "not valid JSON"},
        {"header not an object", header_file("[1,2]", 0), "not a JSON object"},
        {"truncated data", full.substr(0, full.size() - 3), "outside the"},
        {"offsets out of range", header_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 8),
         "outside the"},
        {"begin after end", header_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8),
         "outside the"},
        {"size does not match shape",
         header_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "needs 12"},
        {"overlapping offsets",
         header_file(
             R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
             12),
         "overlap"},
        {"wrong dtype", header_file(R"({"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", 8),
         "unsupported dtype F16"},
        {"negative dimension", header_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
         "negative dimension"},
        {"no offsets", header_file(R"({"a":{"dtype":"F32","shape":[2]}})", 8), "data_offsets"},
        {"metadata not strings", header_file(R"({"__metadata__":{"x":1}})", 0), "not a string"},
    };
    for (auto& c : cases) {
        INFO(c.name);
        auto* p = reinterpret_cast<const uint8_t*>(c.bytes.data());
        REQUIRE_THROWS_WITH(parse_safetensors(p, c.bytes.size(), "case.safetensors"),
                            Catch::Contains(c.reason) && Catch::Contains("case.safetensors"));
    }
    auto* p = reinterpret_cast<const uint8_t*>(full.data());
    CHECK(parse_safetensors(p, full.size(), "ok").f32.size() == 1);
    REQUIRE_THROWS_WITH(read_safetensors("/nonexistent/x.safetensors"), Catch::Contains("cannot open"));
}

TEST_CASE("writes are atomic: a failed write leaves the previous file intact, no temporaries",
          "[checkpoint]") {
    fs::path dir = tmpdir();
    std::string path = (dir / "w.safetensors").string();
    write_safetensors(path, {{"x", Tensor::ones({3})}});
    // Make the rename fail: the target is now a non-empty directory's name.
    std::string blocked = (dir / "blocked").string();
    fs::create_directories(fs::path(blocked) / "inside");
    REQUIRE_THROWS(write_safetensors(blocked, {{"x", Tensor::zeros({3})}}));
    CHECK(read_safetensors(path).get("x").to_vector() == std::vector<float>{1, 1, 1});
    for (auto& e : fs::directory_iterator(dir))
        CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
    fs::remove_all(dir);
}

TEST_CASE("a state_dict written by PyTorch loads (buffers such as mask accepted)", "[checkpoint][torch]") {
    SafeTensors fx = read_safetensors(test::source_path("tests/fixtures/model_mha.safetensors"));
    std::vector<std::pair<std::string, Tensor>> sd;
    for (auto& [n, t] : fx.f32)
        if (n.rfind("init.", 0) == 0) sd.emplace_back(n.substr(5), t);
    REQUIRE(std::any_of(sd.begin(), sd.end(),
                        [](auto& p) { return p.first.find(".mask") != std::string::npos; }));
    GPTConfig c;
    c.vocab_size = 97;
    c.context_length = 12;
    c.emb_dim = 32;
    c.n_heads = 4;
    c.n_layers = 2;
    c.drop_rate = 0;
    GPTModel m(c);
    SafeTensors st;
    st.f32 = sd;
    load_model_weights(m, st, "torch-export");
    CHECK(m.tok_emb->weight.to_vector() == st.get("tok_emb.weight").to_vector());
}

TEST_CASE("generate: greedy, top-k, temperature, context crop, eos", "[models][generate]") {
    manual_seed(5);
    GPTModel m(small());
    GenerateOptions g{.max_new_tokens = 12};
    auto out = generate(m, {1, 2, 3}, g);  // 15 tokens > context 8: cropping exercised
    REQUIRE(out.size() == 15);
    CHECK(std::vector<int64_t>(out.begin(), out.begin() + 3) == std::vector<int64_t>{1, 2, 3});
    CHECK(generate(m, {1, 2, 3}, g) == out);  // greedy is deterministic
    // greedy: the first new token is the argmax of the last logits
    {
        NoGradGuard ng;
        m.eval();
        Tensor logits = m.forward(Ids{{1, 3}, {1, 2, 3}});
        std::vector<float> last(logits.data() + 2 * 40, logits.data() + 3 * 40);
        CHECK(out[3] == std::max_element(last.begin(), last.end()) - last.begin());
        m.train();
    }
    auto eos = generate(m, {1, 2, 3}, {.max_new_tokens = 12, .eos_id = out[3]});
    CHECK(eos == std::vector<int64_t>{1, 2, 3});
    // top-k 1 with temperature is greedy again
    Generator gen(7);
    CHECK(generate(m, {1, 2, 3}, {.max_new_tokens = 12, .temperature = 1.5f, .top_k = 1}, gen) == out);
    // sampling with a seed is reproducible, and stays within the top k
    Generator g1(11), g2(11);
    auto s1 = generate(m, {1, 2, 3}, {.max_new_tokens = 5, .temperature = 1.0f, .top_k = 3}, g1);
    auto s2 = generate(m, {1, 2, 3}, {.max_new_tokens = 5, .temperature = 1.0f, .top_k = 3}, g2);
    CHECK(s1 == s2);
    CHECK(m.is_training());  // restored
}
