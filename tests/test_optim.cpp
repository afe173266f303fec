// SGD, gradient clipping and the LR schedule against PyTorch (tests/fixtures/optim.json).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "optim/schedule.h"
#include "optim/sgd.h"
#include "test_util.h"

using namespace tg;

static nlohmann::json fixture() {
    std::ifstream f(test::source_path("tests/fixtures/optim.json"));
    REQUIRE(f.good());
    return nlohmann::json::parse(f);
}

static Tensor vec(const std::vector<float>& v) {
    return Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
}

TEST_CASE("SGD with momentum and weight decay matches torch.optim.SGD", "[optim][torch]") {
    auto j = fixture()["sgd"];
    Tensor p = vec(j["p0"].get<std::vector<float>>()).requires_grad_();
    optim::SGD opt({{"p", p}}, {.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01});
    for (size_t s = 0; s < 3; ++s) {
        p.set_grad(vec(j["grads"][s].get<std::vector<float>>()));
        opt.step();
        auto want = j["after"][s].get<std::vector<float>>();
        auto got = p.to_vector();
        for (size_t i = 0; i < got.size(); ++i) CHECK(std::fabs(got[i] - want[i]) <= 1e-6);
    }
}

TEST_CASE("clip_grad_norm matches torch.nn.utils.clip_grad_norm_", "[optim][torch]") {
    auto j = fixture()["clip"];
    std::vector<Tensor> ps;
    for (auto& g : j["grads"]) {
        Tensor p = Tensor::zeros({static_cast<int64_t>(g.size())}).requires_grad_();
        p.set_grad(vec(g.get<std::vector<float>>()));
        ps.push_back(p);
    }
    double total = optim::clip_grad_norm(ps, j["max_norm"]);
    CHECK(total == Approx(j["total"].get<double>()).epsilon(1e-6));
    for (size_t k = 0; k < ps.size(); ++k) {
        auto want = j["after"][k].get<std::vector<float>>();
        auto got = ps[k].grad().to_vector();
        for (size_t i = 0; i < got.size(); ++i) CHECK(std::fabs(got[i] - want[i]) <= 1e-6);
    }
    CHECK(optim::grad_norm(ps) == Approx(1.0).epsilon(1e-5));
}

TEST_CASE("warmup + cosine schedule equals the book's appendix D", "[optim]") {
    auto j = fixture()["schedule"];
    optim::WarmupCosine s{j["peak"], j["initial"], j["min"], j["warmup"], j["total"]};
    auto lrs = j["lrs"].get<std::vector<double>>();
    for (size_t i = 0; i < lrs.size(); ++i)
        CHECK(s(static_cast<int64_t>(i)) == Approx(lrs[i]).epsilon(1e-12));
}
