// The worked examples of docs/extending.md: a new op (SiLU) with its gradcheck
// and PyTorch fixture, and a new attention layer usable from --attention.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "examples/lowrank_attention.h"
#include "examples/silu.h"
#include "models/gpt.h"
#include "optim/adamw.h"
#include "test_util.h"

using namespace tg;

TEST_CASE("silu: gradcheck and PyTorch", "[examples][grad][torch]") {
    auto r = gradcheck([](const std::vector<Tensor>& x) { return examples::silu(x[0]); },
                       {test::leaf({3, 5}, 1, -4, 4)});
    INFO(r.report);
    CHECK(r.ok);
    std::ifstream f(test::source_path("tests/fixtures/examples.json"));
    auto j = nlohmann::json::parse(f)["silu"];
    Tensor x =
        Tensor::from_vector(j["x"].get<std::vector<float>>(), j["shape"].get<Shape>()).requires_grad_();
    Tensor y = examples::silu(x);
    auto want = j["y"].get<std::vector<double>>();
    auto got = y.to_vector();
    for (size_t i = 0; i < got.size(); ++i)
        CHECK(std::fabs(got[i] - want[i]) <= 1e-6 + 1e-3 * std::fabs(want[i]));
    y.backward(Tensor::from_vector(j["upstream"].get<std::vector<float>>(), y.shape()));
    auto gw = j["grad"].get<std::vector<double>>();
    auto gg = x.grad().to_vector();
    for (size_t i = 0; i < gg.size(); ++i) CHECK(std::fabs(gg[i] - gw[i]) <= 1e-4 + 1e-3 * std::fabs(gw[i]));
}

TEST_CASE("low-rank + diagonal attention head: gradcheck through x and every parameter", "[examples][grad]") {
    manual_seed(2);
    examples::LowRankDiagHead head(6, 3, 5, 0.0f, true);
    Generator g(3);
    g.fill_uniform(head.d.data(), 6, -0.5, 0.5);  // a non-zero diagonal
    std::vector<Tensor> params = head.parameters();
    params.insert(params.begin(), test::leaf({2, 5, 6}, 4));
    auto r = gradcheck([&](const std::vector<Tensor>& x) { return head.forward(x[0]); }, params);
    INFO(r.report);
    CHECK(r.ok);
    std::vector<std::string> names;
    for (auto& [n, t] : head.named_parameters()) names.push_back(n);
    CHECK(names == std::vector<std::string>{"d", "U.weight", "U.bias", "V.weight", "V.bias", "W_value.weight",
                                            "W_value.bias"});
}

TEST_CASE("a GPT with --attention lowrank builds, names its parameters, and learns", "[examples]") {
    examples::register_lowrank_attention();
    models::GPTConfig c;
    c.vocab_size = 30;
    c.context_length = 8;
    c.emb_dim = 16;
    c.n_heads = 2;
    c.n_layers = 1;
    c.drop_rate = 0;
    c.attention = "lowrank";
    manual_seed(4);
    models::GPTModel m(c);
    auto sd = m.state_dict();
    CHECK(std::any_of(sd.begin(), sd.end(),
                      [](auto& p) { return p.first == "trf_blocks.0.att.heads.1.U.weight"; }));
    CHECK(std::any_of(sd.begin(), sd.end(), [](auto& p) { return p.first == "trf_blocks.0.att.heads.0.d"; }));
    std::vector<optim::ParamRef> refs;
    for (auto& [n, t] : m.named_parameters()) refs.push_back({n, t});
    optim::AdamW opt(refs, {.lr = 1e-2});
    Ids ids{{1, 8}, {1, 2, 3, 4, 5, 6, 7, 8}}, tg_{{1, 8}, {2, 3, 4, 5, 6, 7, 8, 9}};
    double first = 0, last = 0;
    for (int s = 0; s < 30; ++s) {
        opt.zero_grad();
        Tensor loss = cross_entropy(m.forward(ids), tg_);
        loss.backward();
        opt.step();
        (s == 0 ? first : last) = loss.item();
    }
    CHECK(last < 0.5 * first);
}
