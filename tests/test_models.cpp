// The GPT against PyTorch (tests/fixtures/model_*.safetensors from
// tools/make_model_fixtures.py): same init from the same seed, same logits, loss,
// gradients and AdamW trajectory from the same weights, for mha and alt1 with
// qkv_bias and out_proj both ways, and mha with --qk-dim 12 and 3 (head size 8).
//
// Tolerances (float32; both sides sum in different orders):
//   logits, loss           1e-4 absolute (logits are O(1); a few ulp of O(100)-term sums)
//   gradients              ||dg|| <= 1e-3 ||g|| + 1e-8 sqrt(n): relative to the norm,
//                          with a floor of 1e-8 per element for parameters whose exact
//                          gradient is zero (every key bias: softmax ignores the
//                          per-row constant q_i . b_k), where both sides hold only
//                          rounding noise of ~1e-9
//   weights after 1, 3 steps  1e-5 absolute, AdamW eps 1e-6 in the fixture (see
//                          tools/make_model_fixtures.py); the optimizer alone is
//                          checked at the default eps against tests/fixtures/adamw.json
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "models/checkpoint.h"
#include "models/gpt.h"
#include "optim/adamw.h"
#include "test_util.h"

using namespace tg;
using namespace tg::models;

namespace {

GPTConfig config_of(const SafeTensors& st) {
    auto j = nlohmann::json::parse(st.metadata.at("config"));
    GPTConfig c;
    c.vocab_size = j["vocab_size"];
    c.context_length = j["context_length"];
    c.emb_dim = j["emb_dim"];
    c.n_heads = j["n_heads"];
    c.n_layers = j["n_layers"];
    c.drop_rate = j["drop_rate"];
    c.qkv_bias = j["qkv_bias"];
    c.attention = j["attention"];
    c.out_proj = j["out_proj"].get<bool>();
    if (j.contains("qk_dim")) c.qk_dim = j["qk_dim"].get<int64_t>();
    return c;
}

std::map<std::string, Tensor> with_prefix(const SafeTensors& st, const std::string& prefix) {
    std::map<std::string, Tensor> out;
    for (auto& [n, t] : st.f32)
        if (n.rfind(prefix, 0) == 0) out[n.substr(prefix.size())] = t;
    return out;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    std::vector<float> x = a.to_vector(), y = b.to_vector();
    double m = 0;
    for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(x[i]) - y[i]));
    return m;
}

// ||a - b|| - (1e-3 ||b|| + 1e-8 sqrt(n)): <= 0 passes.
double grad_excess(const Tensor& a, const Tensor& b) {
    std::vector<float> x = a.to_vector(), y = b.to_vector();
    double d = 0, n = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        d += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
        n += static_cast<double>(y[i]) * y[i];
    }
    return std::sqrt(d) - (1e-3 * std::sqrt(n) + 1e-8 * std::sqrt(static_cast<double>(x.size())));
}

std::vector<optim::ParamRef> refs(const GPTModel& m) {
    std::vector<optim::ParamRef> r;
    for (auto& [n, t] : m.named_parameters()) r.push_back({n, t});
    return r;
}

}  // namespace

TEST_CASE("GPT matches PyTorch: init, logits, loss, gradients, AdamW steps", "[models][torch]") {
    for (const char* name : {"mha", "mha_qkvbias_noproj", "alt1", "alt1_qkvbias_proj", "mha_qkdim12_qkvbias",
                             "mha_qkdim3_noproj"}) {
        SECTION(name) {
            SafeTensors fx = read_safetensors(
                test::source_path(std::string("tests/fixtures/model_") + name + ".safetensors"));
            GPTConfig cfg = config_of(fx);
            manual_seed(std::stoull(fx.metadata.at("seed")));
            GPTModel model(cfg);
            auto init = with_prefix(fx, "init.");
            // Same seed, same construction order, PyTorch's transforms (core/random.h):
            // the same initial weights, bit for bit.
            for (auto& [n, t] : model.state_dict()) {
                INFO("init of " << n);
                REQUIRE(init.count(n));
                CHECK(t.to_vector() == init.at(n).to_vector());
            }
            model.load_state_dict(init);
            const Ids& ids = fx.i64.at("ids");
            const Ids& targets = fx.i64.at("targets");
            Tensor logits = model.forward(ids);
            CHECK(max_abs_diff(logits, fx.get("logits")) <= 1e-4);
            Tensor loss = cross_entropy(logits, targets);
            CHECK(std::fabs(loss.item() - fx.get("loss").item()) <= 1e-4);
            loss.backward();
            auto grads = with_prefix(fx, "grad.");
            for (auto& [n, p] : model.named_parameters()) {
                INFO("gradient of " << n);
                REQUIRE(p.grad().defined());
                CHECK(grad_excess(p.grad(), grads.at(n)) <= 0);
            }
            optim::AdamW opt(refs(model), {.lr = 1e-3, .eps = 1e-6, .weight_decay = 0.1});
            opt.step();
            auto s1 = with_prefix(fx, "step1.");
            for (auto& [n, p] : model.named_parameters()) {
                INFO("after 1 step: " << n);
                CHECK(max_abs_diff(p, s1.at(n)) <= 1e-5);
            }
            for (int i = 0; i < 2; ++i) {
                opt.zero_grad();
                cross_entropy(model.forward(ids), targets).backward();
                opt.step();
            }
            auto s3 = with_prefix(fx, "step3.");
            for (auto& [n, p] : model.named_parameters()) {
                INFO("after 3 steps: " << n);
                CHECK(max_abs_diff(p, s3.at(n)) <= 1e-5);
            }
        }
    }
}

TEST_CASE("AdamW at default eps matches torch.optim.AdamW on a single tensor", "[optim][torch]") {
    std::ifstream f(test::source_path("tests/fixtures/adamw.json"));
    auto j = nlohmann::json::parse(f);
    auto p0 = j["p0"].get<std::vector<float>>();
    Tensor p = Tensor::from_vector(p0, {static_cast<int64_t>(p0.size())}).requires_grad_();
    optim::AdamW opt({{"p", p}}, {.lr = 4e-4, .weight_decay = 0.1});
    for (size_t s = 0; s < j["grads"].size(); ++s) {
        auto g = j["grads"][s].get<std::vector<float>>();
        p.set_grad(Tensor::from_vector(g, p.shape()));
        opt.step();
        auto want = j["after"][s].get<std::vector<float>>();
        auto got = p.to_vector();
        for (size_t i = 0; i < got.size(); ++i) {
            INFO("step " << s + 1 << " element " << i);
            CHECK(std::fabs(got[i] - want[i]) <= 1e-7 + 1e-6 * std::fabs(want[i]));
        }
    }
}

TEST_CASE("gpt2-124m parameter counts equal PyTorch's", "[models][torch]") {
    std::ifstream f(test::source_path("tests/fixtures/model_counts.json"));
    auto counts = nlohmann::json::parse(f);
    for (const char* att : {"mha", "alt1"}) {
        GPTConfig c = preset("gpt2-124m");
        c.attention = att;
        GPTModel m(c);
        INFO(att);
        CHECK(m.num_parameters() == counts[att].get<int64_t>());
    }
    CHECK(counts["mha"].get<int64_t>() == 162419712);
    CHECK(counts["alt1"].get<int64_t>() == 226111488);
}

TEST_CASE("state_dict names follow the book", "[models]") {
    GPTConfig c = preset("tiny");
    GPTModel m(c);
    std::vector<std::string> names;
    for (auto& [n, t] : m.state_dict()) names.push_back(n);
    CHECK(names.front() == "tok_emb.weight");
    CHECK(names[1] == "pos_emb.weight");
    // PyTorch's order: a module's own buffers come before its children.
    CHECK(names[2] == "trf_blocks.0.att.mask");
    CHECK(names[3] == "trf_blocks.0.att.W_query.weight");
    CHECK(std::find(names.begin(), names.end(), "trf_blocks.1.ff.layers.2.bias") != names.end());
    CHECK(std::find(names.begin(), names.end(), "trf_blocks.0.norm1.scale") != names.end());
    CHECK(names.back() == "out_head.weight");
    c.attention = "alt1";
    GPTModel a(c);
    auto sd = a.state_dict();
    CHECK(std::any_of(sd.begin(), sd.end(),
                      [](auto& p) { return p.first == "trf_blocks.0.att.heads.3.S.weight"; }));
    CHECK(std::any_of(sd.begin(), sd.end(),
                      [](auto& p) { return p.first == "trf_blocks.1.att.heads.0.W_value.weight"; }));
    CHECK_FALSE(std::any_of(sd.begin(), sd.end(),
                            [](auto& p) { return p.first.find("out_proj") != std::string::npos; }));
}

TEST_CASE("train/eval propagate, dropout is identity in eval", "[models]") {
    GPTConfig c = preset("tiny");
    c.vocab_size = 50;
    GPTModel m(c);
    m.eval();
    CHECK_FALSE(m.trf_blocks[1]->drop_shortcut->is_training());
    Ids ids{{1, 5}, {1, 2, 3, 4, 5}};
    NoGradGuard ng;
    Tensor a = m.forward(ids), b = m.forward(ids);
    CHECK(a.to_vector() == b.to_vector());
    m.train();
    CHECK(m.trf_blocks[1]->att->is_training());
    Tensor d = m.forward(ids);
    CHECK(d.to_vector() != a.to_vector());
}
