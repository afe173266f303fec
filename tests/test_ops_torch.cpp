// Every op against PyTorch: tests/fixtures/ops.json is written by
// tools/make_op_fixtures.py (Debian python3-torch). Tolerances, as tinygrad's:
// forward |a - b| <= 1e-6 + 1e-3 |b|, gradients |a - b| <= 1e-4 + 1e-3 |b|.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "core/tapegrad.h"
#include "op_cases.h"
#include "test_util.h"

using namespace tg;
using json = nlohmann::json;

namespace {

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
    // The table (tests/op_cases.h) and the fixture name the same cases.
    std::map<std::string, const test::OpCase*> rows;
    for (auto& c : test::op_cases()) rows[c.name] = &c;
    for (auto& [name, c] : rows) {
        INFO("op case '" << name
                         << "' has no PyTorch fixture: add it to tools/make_op_fixtures.py and rerun it");
        CHECK(fx["cases"].contains(name));
    }
    for (auto& [name, c] : fx["cases"].items()) {
        INFO("fixture case '" << name << "' has no row in tests/op_cases.h");
        CHECK(rows.count(name));
    }
    for (auto& [name, c] : fx["cases"].items()) {
        if (!rows.count(name)) continue;
        SECTION(name) {
            std::vector<Tensor> in;
            for (auto& ij : c["inputs"])
                in.push_back(
                    Tensor::from_vector(ij["data"].get<std::vector<float>>(), ij["shape"].get<Shape>())
                        .requires_grad_());
            Tensor out = rows.at(name)->fn(in, c["ints"].get<std::vector<int64_t>>());
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
