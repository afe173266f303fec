// Every op against PyTorch: tests/fixtures/ops.json is written by
// tools/make_op_fixtures.py (Debian python3-torch). Tolerances, as tinygrad's:
// forward |a - b| <= 1e-6 + 1e-3 |b|, gradients |a - b| <= 1e-4 + 1e-3 |b|.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <functional>
#include <map>

#include "core/tapegrad.h"
#include "test_util.h"

using namespace tg;
using json = nlohmann::json;

namespace {

using CaseFn = std::function<Tensor(const std::vector<Tensor>&, const std::vector<int64_t>&)>;

Tensor causal_mask(int64_t T) {
    Tensor m = Tensor::zeros({T, T});
    for (int64_t i = 0; i < T; ++i)
        for (int64_t j = i + 1; j < T; ++j) m.data()[i * T + j] = 1.0f;
    return m;
}

const std::map<std::string, CaseFn>& cases() {
    using V = const std::vector<Tensor>&;
    using I = const std::vector<int64_t>&;
    static const std::map<std::string, CaseFn> m = {
        {"add_broadcast", [](V x, I) { return add(x[0], x[1]); }},
        {"mul_broadcast", [](V x, I) { return mul(x[0], x[1]); }},
        {"sub", [](V x, I) { return sub(x[0], x[1]); }},
        {"div", [](V x, I) { return div(x[0], x[1]); }},
        {"neg", [](V x, I) { return neg(x[0]); }},
        {"exp", [](V x, I) { return exp(x[0]); }},
        {"log", [](V x, I) { return log(x[0]); }},
        {"sqrt", [](V x, I) { return sqrt(x[0]); }},
        {"pow3", [](V x, I) { return pow(x[0], 3.0f); }},
        {"tanh", [](V x, I) { return tanh(x[0]); }},
        {"gelu", [](V x, I) { return gelu(x[0]); }},
        {"scalar_ops", [](V x, I) { return sub(div(mul(add(x[0], 2.5f), 0.75f), 8.0f), 1.0f); }},
        {"matmul_2d", [](V x, I) { return matmul(x[0], x[1]); }},
        {"matmul_batched_broadcast", [](V x, I) { return matmul(x[0], x[1]); }},
        {"matmul_nt", [](V x, I) { return matmul(x[0], x[1].transpose(-1, -2)); }},
        {"matmul_tn", [](V x, I) { return matmul(x[0].transpose(-1, -2), x[1]); }},
        {"attention_heads",
         [](V x, I) {
             return matmul(x[0].view({2, 3, 2, 4}).transpose(1, 2),
                           x[1].view({2, 3, 2, 4}).transpose(1, 2).transpose(2, 3));
         }},
        {"linear", [](V x, I) { return linear(x[0], x[1], x[2]); }},
        {"linear_nobias", [](V x, I) { return linear(x[0], x[1], Tensor()); }},
        {"sum_all", [](V x, I) { return sum(x[0]); }},
        {"sum_dim1_keep", [](V x, I) { return sum(x[0], 1, true); }},
        {"mean_dim0", [](V x, I) { return mean(x[0], 0); }},
        {"var_last_biased", [](V x, I) { return var(x[0], -1, true, false); }},
        {"max_dim1", [](V x, I) { return max(x[0], 1); }},
        {"softmax", [](V x, I) { return softmax(x[0]); }},
        {"log_softmax", [](V x, I) { return log_softmax(x[0]); }},
        {"masked_softmax",
         [](V x, I) { return softmax(div(masked_fill(x[0], causal_mask(5), -INFINITY), 2.0f)); }},
        {"layer_norm", [](V x, I) { return layer_norm(x[0], x[1], x[2]); }},
        {"embedding_repeated",
         [](V x, I ids) {
             return embedding(x[0], Ids{{2, 3}, ids});
         }},
        {"cross_entropy_ignore",
         [](V x, I t) {
             return cross_entropy(x[0], Ids{{8}, t});
         }},
        {"dropout_mask",
         [](V x, I m) {
             std::vector<float> mf(m.begin(), m.end());
             return dropout_with_mask(x[0], Tensor::from_vector(mf, x[0].shape()), 0.1f);
         }},
        {"cat_dim1",
         [](V x, I) {
             return cat({x[0], x[1]}, 1);
         }},
        {"slice_permute",
         [](V x, I) {
             return x[0].permute({2, 0, 1}).slice(0, 1, 3).reshape({2, 6});
         }},
    };
    return m;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double atol, double rtol,
                  const std::string& what) {
    REQUIRE(got.size() == want.size());
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        double excess = std::fabs(got[i] - want[i]) - (atol + rtol * std::fabs(want[i]));
        if (std::isnan(got[i]) || excess > worst) {
            worst = std::isnan(got[i]) ? 1e30 : excess;
            wi = i;
        }
    }
    INFO(what << ": worst element " << wi << ": tapegrad " << got[wi] << ", torch " << want[wi]);
    CHECK(worst <= 0);
}

}  // namespace

TEST_CASE("every op matches PyTorch forward and backward", "[ops][torch]") {
    std::ifstream f(test::source_path("tests/fixtures/ops.json"));
    REQUIRE(f.good());
    json fx = json::parse(f);
    REQUIRE(fx["cases"].size() == cases().size());
    for (auto& [name, c] : fx["cases"].items()) {
        SECTION(name) {
            REQUIRE(cases().count(name));
            std::vector<Tensor> in;
            for (auto& ij : c["inputs"])
                in.push_back(
                    Tensor::from_vector(ij["data"].get<std::vector<float>>(), ij["shape"].get<Shape>())
                        .requires_grad_());
            Tensor out = cases().at(name)(in, c["ints"].get<std::vector<int64_t>>());
            REQUIRE(out.shape() == c["out"]["shape"].get<Shape>());
            expect_close(out.to_vector(), c["out"]["data"].get<std::vector<double>>(), 1e-6, 1e-3,
                         name + " forward");
            out.backward(Tensor::from_vector(c["upstream"].get<std::vector<float>>(), out.shape()));
            for (size_t k = 0; k < in.size(); ++k) {
                REQUIRE(in[k].grad().defined());
                expect_close(in[k].grad().to_vector(), c["grads"][k].get<std::vector<double>>(), 1e-4, 1e-3,
                             name + " grad of input " + std::to_string(k));
            }
        }
    }
}
