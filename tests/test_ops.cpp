// Every op's backward against finite differences (core/gradcheck.h), including
// broadcasting, every transpose combination of batched matmul, repeated
// embedding ids, -inf-masked rows, ignore_index and a fixed dropout mask.
#include <catch2/catch.hpp>

#include "core/tapegrad.h"
#include "op_cases.h"
#include "test_util.h"

using namespace tg;
using test::leaf;

template <class F, class... Ts>
void check_grad(F fn, Ts... inputs) {
    GradcheckResult r = gradcheck(fn, {inputs...});
    INFO(r.report);
    CHECK(r.ok);
}
#define GRADCHECK(...) check_grad(__VA_ARGS__)

using V = const std::vector<Tensor>&;

// Every row of the op table (tests/op_cases.h), on seeded inputs. The cases
// below add what one row cannot: more broadcasting, strided views, every
// transpose combination, -inf rows, eval-mode dropout.
TEST_CASE("every op of the table passes gradcheck", "[ops][grad]") {
    uint64_t seed = 100;
    for (const test::OpCase& c : test::op_cases()) {
        std::vector<Tensor> in;
        for (const test::InputSpec& s : c.inputs) {
            Tensor t = leaf(s.shape, ++seed, s.lo, s.hi);
            if (!s.values.empty()) {
                REQUIRE(static_cast<int64_t>(s.values.size()) == t.numel());
                std::copy(s.values.begin(), s.values.end(), t.data());
            }
            in.push_back(t);
        }
        const auto& fn = c.fn;
        const auto& ints = c.ints;
        GradcheckResult r = gradcheck([&](V x) { return fn(x, ints); }, in);
        INFO(c.name << ": " << r.report);
        CHECK(r.ok);
    }
}

TEST_CASE("elementwise binary ops with broadcasting", "[ops][grad]") {
    auto a = leaf({2, 3, 4}, 1), b = leaf({3, 1}, 2), c = leaf({4}, 3), d = leaf({2, 3, 4}, 4, 0.5f, 2.0f);
    GRADCHECK([](V x) { return add(x[0], x[1]); }, a, b);
    GRADCHECK([](V x) { return add(x[0], x[1]); }, a, c);
    GRADCHECK([](V x) { return mul(x[0], x[1]); }, a, b);
    GRADCHECK([](V x) { return mul(x[1], x[0]); }, a, c);
    GRADCHECK([](V x) { return sub(x[0], x[1]); }, a, b);
    GRADCHECK([](V x) { return div(x[0], x[1]); }, a, d);
    GRADCHECK([](V x) { return mul(x[0], x[0]); }, a);  // the same tensor twice
}

TEST_CASE("elementwise unary and scalar ops", "[ops][grad]") {
    auto a = leaf({3, 5}, 5), p = leaf({3, 5}, 6, 0.5f, 2.0f);
    GRADCHECK([](V x) { return neg(x[0]); }, a);
    GRADCHECK([](V x) { return exp(x[0]); }, a);
    GRADCHECK([](V x) { return log(x[0]); }, p);
    GRADCHECK([](V x) { return sqrt(x[0]); }, p);
    GRADCHECK([](V x) { return pow(x[0], 3.0f); }, a);
    GRADCHECK([](V x) { return pow(x[0], -1.5f); }, p);
    GRADCHECK([](V x) { return tanh(x[0]); }, a);
    GRADCHECK([](V x) { return gelu(x[0]); }, leaf({4, 6}, 7, -3.0f, 3.0f));
    GRADCHECK([](V x) { return add(x[0], 2.5f); }, a);
    GRADCHECK([](V x) { return mul(x[0], -0.75f); }, a);
    GRADCHECK([](V x) { return div(x[0], 8.0f); }, a);
    GRADCHECK([](V x) { return sub(x[0], 1.0f); }, a);
}

TEST_CASE("elementwise ops read strided views", "[ops][grad]") {
    auto a = leaf({4, 3}, 8), b = leaf({3, 4}, 9);
    GRADCHECK([](V x) { return mul(x[0].transpose(0, 1), x[1]); }, a, b);
    GRADCHECK([](V x) { return exp(x[0].transpose(0, 1).slice(1, 1, 3)); }, a);
}

TEST_CASE("matmul 2-D and batched in every transpose combination", "[ops][grad][matmul]") {
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb) {
            INFO("transpose a " << ta << ", transpose b " << tb);
            Tensor a = ta ? leaf({2, 5, 3}, 10) : leaf({2, 3, 5}, 10);
            Tensor b = tb ? leaf({2, 4, 5}, 11) : leaf({2, 5, 4}, 11);
            GRADCHECK(
                [ta, tb](V x) {
                    return matmul(ta ? x[0].transpose(1, 2) : x[0], tb ? x[1].transpose(1, 2) : x[1]);
                },
                a, b);
            Tensor a2 = ta ? leaf({5, 3}, 12) : leaf({3, 5}, 12);
            Tensor b2 = tb ? leaf({4, 5}, 13) : leaf({5, 4}, 13);
            GRADCHECK(
                [ta, tb](V x) {
                    return matmul(ta ? x[0].transpose(0, 1) : x[0], tb ? x[1].transpose(0, 1) : x[1]);
                },
                a2, b2);
        }
}

TEST_CASE("matmul broadcasts batch dims (4-D, shared weight, attention heads)", "[ops][grad][matmul]") {
    GRADCHECK([](V x) { return matmul(x[0], x[1]); }, leaf({2, 2, 3, 4}, 14), leaf({4, 5}, 15));
    GRADCHECK([](V x) { return matmul(x[0], x[1]); }, leaf({3, 4}, 16), leaf({2, 2, 4, 5}, 17));
    GRADCHECK([](V x) { return matmul(x[0], x[1]); }, leaf({2, 1, 3, 4}, 18), leaf({1, 3, 4, 2}, 19));
    // q @ k^T on head views of [B, T, C] projections: [B, NH, T, HS] @ [B, NH, HS, T]
    GRADCHECK(
        [](V x) {
            Tensor q = x[0].view({2, 3, 2, 2}).transpose(1, 2);
            Tensor k = x[1].view({2, 3, 2, 2}).transpose(1, 2);
            return matmul(q, k.transpose(2, 3));
        },
        leaf({2, 3, 4}, 20), leaf({2, 3, 4}, 21));
}

TEST_CASE("linear with and without bias", "[ops][grad]") {
    GRADCHECK([](V x) { return linear(x[0], x[1], x[2]); }, leaf({2, 3, 4}, 22), leaf({5, 4}, 23),
              leaf({5}, 24));
    GRADCHECK([](V x) { return linear(x[0], x[1], Tensor()); }, leaf({3, 4}, 25), leaf({2, 4}, 26));
    GRADCHECK([](V x) { return linear(x[0].transpose(0, 1), x[1], Tensor()); }, leaf({4, 3}, 27),
              leaf({2, 4}, 28));
}

TEST_CASE("reductions", "[ops][grad]") {
    auto a = leaf({3, 4, 5}, 30);
    GRADCHECK([](V x) { return sum(x[0]); }, a);
    GRADCHECK([](V x) { return mean(x[0]); }, a);
    for (int d = 0; d < 3; ++d) {
        INFO("dim " << d);
        GRADCHECK([d](V x) { return sum(x[0], d, true); }, a);
        GRADCHECK([d](V x) { return mean(x[0], d, false); }, a);
        GRADCHECK([d](V x) { return var(x[0], d, true, false); }, a);
        GRADCHECK([d](V x) { return var(x[0], d, false, true); }, a);
    }
    // max: distinct values, far apart, so the argmax does not move under +-2h
    Tensor m = Tensor::from_vector({0.1f, 0.9f, -0.5f, 0.4f, 1.2f, -1.0f}, {2, 3}).requires_grad_();
    GRADCHECK([](V x) { return max(x[0], 1); }, m);
    GRADCHECK([](V x) { return max(x[0], 0, true); }, m);
}

TEST_CASE("softmax, log_softmax and masked rows", "[ops][grad]") {
    auto a = leaf({3, 6}, 31, -2.0f, 2.0f);
    GRADCHECK([](V x) { return softmax(x[0]); }, a);
    GRADCHECK([](V x) { return log_softmax(x[0]); }, a);
    // causal mask with -inf, as attention uses it
    Tensor mask = Tensor::zeros({4, 4});
    for (int i = 0; i < 4; ++i)
        for (int j = i + 1; j < 4; ++j) mask.data()[i * 4 + j] = 1.0f;
    auto s = leaf({2, 4, 4}, 32);
    GRADCHECK([mask](V x) { return softmax(masked_fill(x[0], mask, -INFINITY)); }, s);
    GRADCHECK([mask](V x) { return masked_fill(x[0], mask, 0.25f); }, s);
}

TEST_CASE("layer_norm", "[ops][grad]") {
    GRADCHECK([](V x) { return layer_norm(x[0], x[1], x[2]); }, leaf({2, 3, 8}, 33, -2.0f, 2.0f),
              leaf({8}, 34, 0.5f, 1.5f), leaf({8}, 35));
}

TEST_CASE("embedding with repeated ids", "[ops][grad]") {
    Ids ids{{2, 3}, {1, 4, 1, 0, 1, 4}};
    GRADCHECK([ids](V x) { return embedding(x[0], ids); }, leaf({5, 3}, 36));
}

TEST_CASE("cross_entropy, with and without ignore_index", "[ops][grad]") {
    Ids t{{6}, {0, 3, 4, 1, 3, 2}};
    GRADCHECK([t](V x) { return cross_entropy(x[0], t); }, leaf({6, 5}, 37, -2.0f, 2.0f));
    Ids ti{{2, 3}, {0, -100, 4, -100, 3, 2}};
    GRADCHECK([ti](V x) { return cross_entropy(x[0], ti); }, leaf({2, 3, 5}, 38, -2.0f, 2.0f));
}

TEST_CASE("dropout with a fixed mask, and in eval mode", "[ops][grad]") {
    Tensor mask = Tensor::from_vector({1, 0, 1, 1, 0, 1, 1, 1}, {2, 4});
    GRADCHECK([mask](V x) { return dropout_with_mask(x[0], mask, 0.25f); }, leaf({2, 4}, 39));
    Tensor a = leaf({2, 4}, 40);
    CHECK(dropout(a, 0.5f, false).impl() == a.impl());
    Generator g1(7), g2(7);
    Tensor y1 = dropout(a, 0.5f, true, g1), y2 = dropout(a, 0.5f, true, g2);
    CHECK(y1.to_vector() == y2.to_vector());
    std::vector<float> av = a.to_vector(), yv = y1.to_vector();
    for (size_t i = 0; i < av.size(); ++i) CHECK((yv[i] == 0.0f || yv[i] == av[i] / 0.5f));
}

TEST_CASE("cat and slice", "[ops][grad]") {
    GRADCHECK([](V x) { return cat({x[0], x[1]}, 1); }, leaf({2, 3}, 41), leaf({2, 2}, 42));
    GRADCHECK([](V x) { return cat({x[0], x[1], x[0]}, 0); }, leaf({2, 3}, 43), leaf({1, 3}, 44));
    GRADCHECK([](V x) { return x[0].slice(0, 1, 3); }, leaf({4, 2}, 45));
    GRADCHECK([](V x) { return x[0].permute({2, 0, 1}).reshape({4, 6}); }, leaf({2, 3, 4}, 46));
}

// Issue 36, item 3: the edge shapes that crashed the process or gave a wrong
// gradient, each with PyTorch 1.13's answer. The sweep of every op over edge
// shapes is tests/test_ops_edge.cpp.
TEST_CASE("0-d tensors reduce and transpose as PyTorch does (issue 36)", "[ops][edge]") {
    using F = std::function<Tensor(const Tensor&)>;
    std::vector<std::pair<const char*, F>> ops = {
        {"mean(x, 0)", [](const Tensor& x) { return mean(x, 0); }},
        {"mean(x, -1, keepdim)", [](const Tensor& x) { return mean(x, -1, true); }},
        {"max(x, 0)", [](const Tensor& x) { return max(x, 0); }},
        {"x.transpose(0, 0)", [](const Tensor& x) { return x.transpose(0, 0); }},
        {"x.transpose(-1, 0)", [](const Tensor& x) { return x.transpose(-1, 0); }},
    };
    for (auto& [name, f] : ops) {
        INFO(name);
        Tensor x = Tensor::scalar(2.5f).requires_grad_();
        Tensor y = f(x);
        CHECK(y.shape() == Shape{});
        CHECK(y.item() == 2.5f);
        y.backward();
        REQUIRE(x.grad().defined());
        CHECK(x.grad().item() == 1.0f);
    }
}

TEST_CASE("slice and cat of 0-d tensors throw PyTorch's reason (issue 36)", "[ops][edge]") {
    Tensor x = Tensor::scalar(2.5f).requires_grad_();
    CHECK_THROWS_AS(x.slice(0, 0, 1), Error);
    CHECK_THROWS_WITH(x.slice(0, 0, 1), Catch::Contains("tapegrad: slice: ") &&
                                            Catch::Contains("slice() cannot be applied to a 0-dim tensor"));
    CHECK_THROWS_AS(cat({x, x}, 0), Error);
    CHECK_THROWS_WITH(cat({x, x}, 0),
                      Catch::Contains("tapegrad: cat: ") &&
                          Catch::Contains("zero-dimensional tensor (at position 0) cannot be concatenated"));
    Tensor v = Tensor::ones({2});
    CHECK_THROWS_WITH(cat({v, x}, 0), Catch::Contains("zero-dimensional tensor (at position 1)"));
}

TEST_CASE("linear with IN = 0 gives the bias in every row (issue 36)", "[ops][edge]") {
    Tensor x = Tensor::empty({2, 0}).requires_grad_();
    Tensor w = Tensor::empty({3, 0}).requires_grad_();
    Tensor b = Tensor::from_vector({0.5f, -1.0f, 2.0f}, {3}).requires_grad_();
    Tensor y = linear(x, w, b);
    REQUIRE(y.shape() == Shape{2, 3});
    CHECK(y.to_vector() == std::vector<float>{0.5f, -1.0f, 2.0f, 0.5f, -1.0f, 2.0f});
    y.backward(Tensor::ones({2, 3}));
    CHECK(b.grad().to_vector() == std::vector<float>{2.0f, 2.0f, 2.0f});
    CHECK(x.grad().shape() == Shape{2, 0});
    CHECK(w.grad().shape() == Shape{3, 0});
}

TEST_CASE("cross_entropy over V = 0 classes throws naming the shapes (issue 36)", "[ops][edge]") {
    Tensor logits = Tensor::empty({2, 0}).requires_grad_();
    CHECK_THROWS_AS(cross_entropy(logits, Ids{{2}, {0, 0}}), Error);
    CHECK_THROWS_WITH(cross_entropy(logits, Ids{{2}, {0, 0}}), Catch::Contains("tapegrad: cross_entropy: ") &&
                                                                   Catch::Contains("out of bounds") &&
                                                                   Catch::Contains("[2, 0]"));
}

TEST_CASE("matmul over an empty batch writes a zero gradient for the shared operand (issue 36)",
          "[ops][edge][matmul]") {
    bool prev = debug_fill_nan();
    set_debug_fill_nan(true);  // an unwritten gradient buffer reads NaN
    Tensor a = Tensor::empty({0, 2, 3}).requires_grad_();
    Tensor b = Tensor::ones({3, 2}).requires_grad_();
    Tensor c = matmul(a, b);
    CHECK(c.shape() == Shape{0, 2, 2});
    c.backward(Tensor::empty({0, 2, 2}));
    set_debug_fill_nan(prev);
    CHECK(a.grad().shape() == Shape{0, 2, 3});
    REQUIRE(b.grad().shape() == Shape{3, 2});
    CHECK(b.grad().to_vector() == std::vector<float>(6, 0.0f));
}

TEST_CASE("pow with exponent 0 has gradient 0 at x = 0 as in PyTorch (issue 36)", "[ops][edge]") {
    Tensor x = Tensor::from_vector({0.0f, 2.0f, -1.5f}, {3}).requires_grad_();
    sum(pow(x, 0.0f)).backward();
    CHECK(x.grad().to_vector() == std::vector<float>{0.0f, 0.0f, 0.0f});
}
