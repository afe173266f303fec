// Pretrained GPT-2 in the Hugging Face layout (models/gpt2_hf.h) against PyTorch:
// a random HF-layout file at a small config and the book model's logits, greedy
// tokens and fine-tuning losses after the book's mapping
// (tools/make_gpt2_hf_fixture.py); the merged-QK (alt1) mapping; refusals naming
// the tensor; the inverse mapping; a 124M-shaped file's shapes.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "models/generate.h"
#include "models/gpt2_hf.h"
#include "optim/adamw.h"
#include "test_util.h"

using namespace tg;
using namespace tg::models;
namespace fs = std::filesystem;

namespace {

const std::string kFile = "tests/fixtures/gpt2_hf_small.safetensors";

fs::path tmpdir() {
    fs::path d = fs::temp_directory_path() / ("tapegrad_gpt2hf_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
}

const SafeTensors& expected() {
    static SafeTensors e =
        read_safetensors(test::source_path("tests/fixtures/gpt2_hf_small_expected.safetensors"));
    return e;
}

std::vector<int64_t> ids_of(const std::string& name) { return expected().i64.at(name).data; }

// max |a - b| / max |b|
double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    double d = 0, m = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        d = std::max(d, std::abs(static_cast<double>(a[i]) - b[i]));
        m = std::max(m, std::abs(static_cast<double>(b[i])));
    }
    return d / m;
}

std::unique_ptr<GPTModel> load(const std::string& path, const std::string& attention = "mha") {
    MappedSafeTensors st(path);
    GPTConfig cfg = gpt2_hf_config(st, 4, attention);
    cfg.drop_rate = 0;
    auto m = std::make_unique<GPTModel>(cfg);
    load_gpt2_hf(*m, st);
    return m;
}

std::vector<float> prompt_logits(GPTModel& m) {
    NoGradGuard ng;
    m.eval();
    auto p = ids_of("prompt");
    return m.forward(Ids{{1, static_cast<int64_t>(p.size())}, p}).to_vector();
}

// Rewrite the fixture with `edit` applied to its tensors, for the refusal cases.
std::string edited(const std::string& name,
                   const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& edit) {
    SafeTensors st = read_safetensors(test::source_path(kFile));
    auto tensors = st.f32;
    edit(tensors);
    std::string path = (tmpdir() / name).string();
    write_safetensors(path, tensors);
    return path;
}

}  // namespace

TEST_CASE("HF layout: config from the file, logits and 30 greedy tokens equal PyTorch's book mapping",
          "[gpt2_hf]") {
    MappedSafeTensors st(test::source_path(kFile));
    REQUIRE(is_gpt2_hf(st));
    GPTConfig cfg = gpt2_hf_config(st, 4);
    CHECK(cfg.vocab_size == 1000);
    CHECK(cfg.context_length == 32);
    CHECK(cfg.emb_dim == 32);
    CHECK(cfg.n_layers == 2);
    CHECK(cfg.qkv_bias);
    CHECK(cfg.has_out_proj());
    REQUIRE_THROWS_WITH(gpt2_hf_config(st), Catch::Contains("--n-heads"));

    auto m = load(test::source_path(kFile));
    CHECK(m->out_head->weight.to_vector() == m->tok_emb->weight.to_vector());  // the book copies wte
    CHECK(rel_err(prompt_logits(*m), expected().get("logits").to_vector()) <= 1e-5);

    auto prompt = ids_of("prompt"), want = ids_of("greedy");
    REQUIRE(want.size() == prompt.size() + 30);  // 38 tokens > context 32: the crop is exercised
    CHECK(generate(*m, prompt, {.max_new_tokens = 30}) == want);
    CHECK(generate(*m, prompt, {.max_new_tokens = 30, .kv_cache = true}) == want);
}

TEST_CASE("HF layout into alt1: S_h = Wk_h^T Wq_h gives the same logits and greedy tokens",
          "[gpt2_hf][alt1]") {
    auto m = load(test::source_path(kFile), "alt1");
    REQUIRE(m->config().attention == "alt1");
    // Not bit-identical: the row-constant score terms the merge drops change rounding.
    CHECK(rel_err(prompt_logits(*m), expected().get("logits").to_vector()) <= 1e-5);
    auto prompt = ids_of("prompt"), want = ids_of("greedy");
    CHECK(generate(*m, prompt, {.max_new_tokens = 30}) == want);
    CHECK(generate(*m, prompt, {.max_new_tokens = 30, .kv_cache = true}) == want);
}

TEST_CASE("fine-tuning from the HF file: 5 AdamW steps equal PyTorch's losses", "[gpt2_hf][train]") {
    auto m = load(test::source_path(kFile));
    m->train();
    std::vector<optim::ParamRef> refs;
    for (auto& [n, t] : m->named_parameters()) refs.push_back({n, t});
    optim::AdamW opt(refs, {.lr = 1e-3, .weight_decay = 0.1});
    const Ids& xs = expected().i64.at("finetune_x");
    const Ids& ys = expected().i64.at("finetune_y");
    std::vector<float> want = expected().get("finetune_losses").to_vector();
    REQUIRE(xs.shape == Shape{5, 2, 16});
    int64_t n = 2 * 16;
    for (int64_t s = 0; s < 5; ++s) {
        Ids x{{2, 16}, std::vector<int64_t>(xs.data.begin() + s * n, xs.data.begin() + (s + 1) * n)};
        Ids y{{2, 16}, std::vector<int64_t>(ys.data.begin() + s * n, ys.data.begin() + (s + 1) * n)};
        opt.zero_grad();
        Tensor loss = cross_entropy(m->forward(x), y);
        loss.backward();
        opt.step();
        INFO("step " << s << ": tapegrad " << loss.item() << ", PyTorch " << want[s]);
        CHECK(std::abs(loss.item() - want[s]) <= 1e-5 * std::abs(want[s]));
    }
}

TEST_CASE("HF layout: a missing, wrong-shaped or unexpected tensor is refused with its name",
          "[gpt2_hf][errors]") {
    auto drop = edited("missing.safetensors", [](auto& t) {
        std::erase_if(t, [](auto& p) { return p.first == "transformer.h.1.mlp.c_fc.bias"; });
    });
    REQUIRE_THROWS_WITH(load(drop), Catch::Contains("'transformer.h.1.mlp.c_fc.bias' is missing"));
    auto bad = edited("shape.safetensors", [](auto& t) {
        for (auto& [n, v] : t)
            if (n == "transformer.h.0.attn.c_attn.weight")
                v = Tensor::zeros({96, 32});  // [out, in]: wrong way
    });
    REQUIRE_THROWS_WITH(load(bad),
                        Catch::Contains("'transformer.h.0.attn.c_attn.weight' has shape [96, 32]") &&
                            Catch::Contains("needs [32, 96]"));
    auto extra = edited("extra.safetensors",
                        [](auto& t) { t.emplace_back("transformer.h.2.ln_9.weight", Tensor::zeros({32})); });
    REQUIRE_THROWS_WITH(load(extra), Catch::Contains("unexpected tensor 'transformer.h.2.ln_9.weight'"));
    auto none = edited("none.safetensors", [](auto& t) {
        std::erase_if(t, [](auto& p) { return p.first == "transformer.wte.weight"; });
    });
    REQUIRE_THROWS_WITH(load(none), Catch::Contains("not the Hugging Face GPT-2 layout"));
    // A model the file cannot fill: qkv_bias off.
    MappedSafeTensors st(test::source_path(kFile));
    GPTConfig cfg = gpt2_hf_config(st, 4);
    cfg.qkv_bias = false;
    GPTModel nobias(cfg);
    REQUIRE_THROWS_WITH(load_gpt2_hf(nobias, st), Catch::Contains("qkv_bias"));
}

TEST_CASE("HF layout: no prefix and no mask buffers load the same (inverse mapping round trip)",
          "[gpt2_hf]") {
    auto m = load(test::source_path(kFile));
    std::string plain = (tmpdir() / "plain.safetensors").string();
    save_gpt2_hf(plain, *m);  // names without "transformer.", no attn.bias buffers
    {
        MappedSafeTensors st(plain);
        CHECK(st.find("wte.weight") != nullptr);
        CHECK(st.find("h.0.attn.bias") == nullptr);
    }
    auto back = load(plain);
    auto a = m->state_dict(), b = back->state_dict();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        INFO(a[i].first);
        CHECK(a[i].second.to_vector() == b[i].second.to_vector());
    }
}

TEST_CASE("a 124M-shaped random HF file: gpt2-small-hf's shapes, loaded in place from the mmap",
          "[gpt2_hf][slow]") {
    manual_seed(1);
    GPTConfig cfg = preset("gpt2-small-hf");
    std::string path = (tmpdir() / "gpt2_124m_random.safetensors").string();
    {
        GPTModel src(cfg);
        save_gpt2_hf(path, src, "", true);
    }
    MappedSafeTensors st(path);
    GPTConfig got = gpt2_hf_config(st);  // n_heads from the matching OpenAI size
    CHECK(got.describe() == cfg.describe());
    GPTModel m(got);
    auto t0 = std::chrono::steady_clock::now();
    load_gpt2_hf(m, st);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    WARN("124M-shaped file (" << st.file_size() / (1 << 20) << " MiB, in the page cache) loaded in " << secs
                              << " s");
    CHECK(m.num_parameters() == 163037184);  // 124.4M + the untied out_head copy of wte
    CHECK(m.trf_blocks[11]->att->named_parameters().size() == 8);
    fs::remove(path);
}
