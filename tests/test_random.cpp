// The generator reproduces PyTorch's CPU random streams bit for bit
// (tests/fixtures/random.json, from tools/make_random_fixtures.py).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <bit>
#include <fstream>
#include <random>
#include <sstream>

#include "core/tapegrad.h"
#include "test_util.h"

using namespace tg;
using json = nlohmann::json;

static json fixture() {
    std::ifstream f(test::source_path("tests/fixtures/random.json"));
    REQUIRE(f.good());
    return json::parse(f);
}

static std::vector<uint32_t> bits_of(const std::vector<float>& v) {
    std::vector<uint32_t> b;
    for (float x : v) b.push_back(std::bit_cast<uint32_t>(x));
    return b;
}

TEST_CASE("uniform_ on float32 matches torch bit for bit", "[random][torch]") {
    auto j = fixture()["uniform_f32"];
    Generator g(j["seed"].get<uint64_t>());
    std::vector<float> v(j["n"].get<size_t>());
    g.fill_uniform(v.data(), static_cast<int64_t>(v.size()), j["from"], j["to"]);
    CHECK(bits_of(v) == j["bits"].get<std::vector<uint32_t>>());
}

// n < 16 takes PyTorch's scalar double Box-Muller, n >= 16 its AVX2 kernel with
// the avx_mathfun polynomials (core/random.cpp emulates both): bit for bit.
TEST_CASE("normal_ matches torch for sizes 1..100 and large, drawn in sequence", "[random][torch]") {
    auto j = fixture()["normal_f32"];
    Generator g(j["seed"].get<uint64_t>());
    for (auto& s : j["sizes"]) {
        size_t n = s["n"].get<size_t>();
        std::vector<float> v(n);
        g.fill_normal(v.data(), static_cast<int64_t>(n), j["mean"], j["std"]);
        auto want = s["bits"].get<std::vector<uint32_t>>();
        auto got = bits_of(v);
        int64_t worst_ulp = 0;
        for (size_t i = 0; i < n; ++i)
            worst_ulp = std::max<int64_t>(
                worst_ulp, std::abs(static_cast<int64_t>(got[i]) - static_cast<int64_t>(want[i])));
        INFO("n = " << n << ": worst difference " << worst_ulp << " ulp");
        CHECK(worst_ulp == 0);
    }
}

TEST_CASE("bernoulli_, randperm and int64 random_ match torch", "[random][torch]") {
    json fx = fixture();
    {
        auto j = fx["bernoulli"];
        Generator g(j["seed"].get<uint64_t>());
        std::vector<float> v(j["n"].get<size_t>());
        g.fill_bernoulli(v.data(), static_cast<int64_t>(v.size()), j["p"]);
        std::vector<int> got(v.begin(), v.end());
        CHECK(got == j["values"].get<std::vector<int>>());
    }
    {
        auto j = fx["randperm"];
        Generator g(j["seed"].get<uint64_t>());
        for (auto& s : j["sizes"]) CHECK(g.randperm(s["n"]) == s["perm"].get<std::vector<int64_t>>());
    }
    {
        auto j = fx["random_int64"];
        Generator g(j["seed"].get<uint64_t>());
        for (auto& v : j["values"]) CHECK(std::to_string(g.random_int64()) == v.get<std::string>());
    }
}

TEST_CASE("nn.Linear's kaiming-uniform weight and bias init match torch", "[random][torch]") {
    auto j = fixture()["linear_init"];
    Generator g(j["seed"].get<uint64_t>());
    int64_t in = j["in"], out = j["out"];
    std::vector<float> w(static_cast<size_t>(in * out)), b(static_cast<size_t>(out));
    double wb = linear_weight_bound(in), bb = linear_bias_bound(in);
    g.fill_uniform(w.data(), in * out, -wb, wb);
    g.fill_uniform(b.data(), out, -bb, bb);
    CHECK(bits_of(w) == j["weight"].get<std::vector<uint32_t>>());
    CHECK(bits_of(b) == j["bias"].get<std::vector<uint32_t>>());
}

TEST_CASE("generator state round-trips", "[random]") {
    Generator g(99);
    g.random();
    std::string s = g.state();
    uint32_t a = g.random();
    Generator h;
    h.set_state(s);
    CHECK(h.random() == a);
}

TEST_CASE("Mt19937 is std::mt19937: outputs, bulk fill across twists, and the text state", "[random]") {
    for (uint32_t seed : {0u, 123u, 5489u, 0xffffffffu}) {
        std::mt19937 ref(seed);
        Mt19937 e(seed);
        // single draws, then bulk fills of sizes that straddle the 624-word twist
        for (int i = 0; i < 1000; ++i) REQUIRE(e() == ref());
        for (int64_t n : {1, 623, 624, 625, 5000, 37}) {
            std::vector<uint32_t> got(static_cast<size_t>(n));
            e.fill(got.data(), n);
            for (int64_t i = 0; i < n; ++i) REQUIRE(got[static_cast<size_t>(i)] == ref());
        }
        std::ostringstream a, b;
        a << e;
        b << ref;
        REQUIRE(a.str() == b.str());  // checkpoints written with std::mt19937 still load
        Mt19937 back;
        std::istringstream(b.str()) >> back;
        for (int i = 0; i < 700; ++i) REQUIRE(back() == ref());
    }
}

// Under mpirun each rank draws its rows' dropout masks from the single
// process's stream (core/ops.h DropoutRows): the rows' masks must be the global
// draw's rows, and the generator must end where the single process's ends.
TEST_CASE("dropout of a rank's rows draws the global batch's masks for them", "[random]") {
    const Shape full{4, 3, 5}, part{2, 3, 5};
    Tensor ones = Tensor::ones(full);
    manual_seed(7);
    Tensor whole = dropout(ones, 0.5f, true);
    std::string after_whole = default_generator().state();
    for (int64_t begin : {0, 2}) {
        manual_seed(7);
        set_dropout_rows({begin, 2, 4});
        Tensor mine = dropout(Tensor::ones(part), 0.5f, true, DropoutSplit::rows);
        set_dropout_rows({});
        CHECK(default_generator().state() == after_whole);
        std::vector<float> w = whole.to_vector(), m = mine.to_vector();
        for (size_t i = 0; i < m.size(); ++i) CHECK(m[i] == w[static_cast<size_t>(begin) * 15 + i]);
    }
    // Declared not split: the whole mask, as one process draws it, whatever dim 0 is.
    for (const Shape& s : {Shape{3, 5}, Shape{2, 5}}) {
        manual_seed(7);
        set_dropout_rows({0, 2, 4});
        Tensor other = dropout(Tensor::ones(s), 0.5f, true, DropoutSplit::none);
        set_dropout_rows({});
        manual_seed(7);
        CHECK(other.to_vector() == dropout(Tensor::ones(s), 0.5f, true).to_vector());
    }
    // Declared row-split with another dim 0, or no declaration under a split:
    // refused naming the op and the shapes, never a silent other path.
    set_dropout_rows({0, 2, 4});
    CHECK_THROWS_WITH(dropout(Tensor::ones({3, 5}), 0.5f, true, DropoutSplit::rows),
                      Catch::Contains("dropout") && Catch::Contains("[3, 5]") &&
                          Catch::Contains("2 rows [0, 2) of the global batch of 4"));
    CHECK_THROWS_WITH(dropout(Tensor::ones({2, 5}), 0.5f, true),
                      Catch::Contains("dropout") && Catch::Contains("[2, 5]") &&
                          Catch::Contains("DropoutSplit::rows | none"));
    set_dropout_rows({});
    tape().clear();
}
