// Tape semantics: accumulation, no_grad, retain_grad, hooks, dump/DOT, errors, anomaly mode.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <sstream>

#include "core/tapegrad.h"
#include "test_util.h"

using namespace tg;

TEST_CASE("gradients accumulate across uses and across backward calls until zero_grad", "[tape]") {
    Tensor x = Tensor::from_vector({1, 2, 3}, {3}).requires_grad_();
    Tensor y = sum(add(mul(x, x), x));  // d/dx = 2x + 1
    y.backward();
    CHECK(x.grad().to_vector() == std::vector<float>{3, 5, 7});
    sum(x).backward();
    CHECK(x.grad().to_vector() == std::vector<float>{4, 6, 8});
    x.zero_grad();
    CHECK_FALSE(x.grad().defined());
    sum(mul(x, 2.0f)).backward();
    CHECK(x.grad().to_vector() == std::vector<float>{2, 2, 2});
}

TEST_CASE("NoGradGuard records nothing", "[tape]") {
    Tensor x = test::leaf({2, 2}, 1);
    size_t before = tape().size();
    {
        NoGradGuard ng;
        Tensor y = exp(x);
        CHECK_FALSE(y.requires_grad());
    }
    CHECK(tape().size() == before);
    tape().clear();
}

TEST_CASE("retain_grad keeps an intermediate's gradient, others are freed", "[tape]") {
    Tensor x = test::leaf({3}, 2);
    Tensor h = mul(x, 3.0f);
    h.retain_grad();
    Tensor h2 = exp(h);
    sum(h2).backward();
    REQUIRE(h.grad().defined());
    CHECK_FALSE(h2.grad().defined());
    std::vector<float> hv = h.to_vector(), hg = h.grad().to_vector();
    for (size_t i = 0; i < hv.size(); ++i) CHECK(hg[i] == Approx(std::exp(hv[i])));
}

TEST_CASE("a hook sees the gradient and may replace it", "[tape]") {
    Tensor x = test::leaf({3}, 3);
    Tensor h = mul(x, 2.0f);
    std::vector<float> seen;
    h.register_hook([&](const Tensor& g) {
        seen = g.to_vector();
        return mul(g, 10.0f);  // hooks run with the tape off for their own ops
    });
    sum(h).backward();
    CHECK(seen == std::vector<float>{1, 1, 1});
    CHECK(x.grad().to_vector() == std::vector<float>{20, 20, 20});
}

TEST_CASE("backward errors: non-scalar, freed tape, op on freed-tape tensors", "[tape]") {
    Tensor x = test::leaf({2}, 4);
    Tensor y = mul(x, 2.0f);
    REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("not a scalar") && Catch::Contains("test_tape.cpp"));
    Tensor l = sum(y);
    l.backward();
    REQUIRE_THROWS_WITH(l.backward(), Catch::Contains("already freed") && Catch::Contains("retain_graph"));
    REQUIRE_THROWS_WITH(add(y, x), Catch::Contains("freed") && Catch::Contains("add"));
    Tensor z = mul(x, 3.0f);
    Tensor lz = sum(z);
    lz.backward(Tensor(), /*retain_graph=*/true);
    lz.backward();
    CHECK(x.grad().to_vector()[0] == Approx(2 + 3 + 3));
    Tensor c = Tensor::ones({2});
    REQUIRE_THROWS_WITH(c.backward(), Catch::Contains("does not require grad"));
}

TEST_CASE("shape errors name the op, both shapes and the call site", "[tape][errors]") {
    Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5});
    REQUIRE_THROWS_WITH(add(a, b), Catch::Contains("add") && Catch::Contains("[2, 3]") &&
                                       Catch::Contains("[4, 5]") && Catch::Contains("test_tape.cpp:"));
    REQUIRE_THROWS_WITH(matmul(a, b), Catch::Contains("matmul") && Catch::Contains("[2, 3]") &&
                                          Catch::Contains("[4, 5]") && Catch::Contains("test_tape.cpp:"));
    REQUIRE_THROWS_WITH(linear(a, b, Tensor()),
                        Catch::Contains("linear") && Catch::Contains("[2, 3]") && Catch::Contains("[4, 5]"));
    REQUIRE_THROWS_WITH(layer_norm(a, Tensor::ones({4}), Tensor::zeros({4})),
                        Catch::Contains("layer_norm") && Catch::Contains("[4]") && Catch::Contains("[2, 3]"));
    REQUIRE_THROWS_WITH(cross_entropy(a, Ids{{3}, {0, 1, 2}}), Catch::Contains("cross_entropy") &&
                                                                   Catch::Contains("[2, 3]") &&
                                                                   Catch::Contains("[3]"));
    REQUIRE_THROWS_WITH(embedding(b, Ids{{1}, {9}}), Catch::Contains("embedding") && Catch::Contains("id 9"));
    REQUIRE_THROWS_WITH(cat({a, b}, 0),
                        Catch::Contains("cat") && Catch::Contains("[2, 3]") && Catch::Contains("[4, 5]"));
    REQUIRE_THROWS_WITH(masked_fill(a, b, 0.f), Catch::Contains("masked_fill"));
    REQUIRE_THROWS_WITH(sum(a, 5), Catch::Contains("dim 5 out of range"));
}

// An extension may name its op with a string it builds (a prefix, a variant's
// name): before the entry interned it, the entry kept the freed buffer.
TEST_CASE("an entry owns its op name when the caller passes a temporary string", "[tape]") {
    tape().clear();
    Tensor x = test::leaf({2}, 7);
    Tensor y = Tensor::zeros({2});
    {
        std::string name = std::string("extension_") + "op_named_longer_than_any_small_string";
        record(name.c_str(), Loc::current(), {x}, y, [](const Tensor&, std::span<GradSlot>) {});
        name.assign(name.size(), 'z');  // the caller reuses its buffer, then frees it
    }
    std::string other(60, 'q');  // a same-sized allocation: likely the freed block
    REQUIRE(tape().size() == 1);
    CHECK(std::string(tape().entries()[0].op) == "extension_op_named_longer_than_any_small_string");
    CHECK(intern_op_name("mul_scalar") == intern_op_name(std::string("mul_scalar").c_str()));
    tape().clear();
}

TEST_CASE("entries carry op, scoped label and call site, dump and DOT show them", "[tape]") {
    tape().clear();
    Tensor x = test::leaf({2, 3}, 5);
    x.set_label("x");
    Tensor s;
    {
        LabelScope blk("trf_blocks.3");
        LabelScope att("att");
        s = mul(x, 0.5f).named("scores");
    }
    Tensor l = sum(exp(s));
    REQUIRE(tape().size() == 3);
    const TapeEntry& e = tape().entries()[0];
    CHECK(std::string(e.op) == "mul_scalar");
    CHECK(e.output.label() == "trf_blocks.3.att.scores");
    CHECK(std::string(e.where.file_name()).find("test_tape.cpp") != std::string::npos);
    std::ostringstream dump, dot;
    tape().dump(dump);
    tape().to_dot(dot);
    CHECK_THAT(dump.str(), Catch::Contains("trf_blocks.3.att.scores") && Catch::Contains("mul_scalar") &&
                               Catch::Contains("test_tape.cpp:") && Catch::Contains("x[2, 3]"));
    CHECK_THAT(dot.str(), Catch::StartsWith("digraph tape") && Catch::Contains("e0 -> e1"));
    l.backward();
}

TEST_CASE("anomaly mode names the entry that made a NaN, forward and backward", "[tape][anomaly]") {
    set_detect_anomaly(true);
    Tensor x = Tensor::from_vector({1, -1}, {2}).requires_grad_();
    {
        LabelScope sc("blk");
        REQUIRE_THROWS_WITH(log(x), Catch::Contains("log") && Catch::Contains("blk.log") &&
                                        Catch::Contains("nan") && Catch::Contains("test_tape.cpp"));
    }
    tape().clear();
    // backward: sqrt at 0 is finite forward, infinite gradient backward
    Tensor z = Tensor::from_vector({0, 4}, {2}).requires_grad_();
    Tensor l = sum(sqrt(z));
    REQUIRE_THROWS_WITH(l.backward(), Catch::Contains("tapegrad: sqrt: anomaly") &&
                                          Catch::Contains("backward") && Catch::Contains("inf") &&
                                          !Catch::Contains("pow"));
    set_detect_anomaly(false);
    tape().clear();
}

TEST_CASE("anomaly mode accepts masked_fill's documented -inf and flags infinities an op makes",
          "[tape][anomaly]") {
    set_detect_anomaly(true);
    Tensor s = Tensor::from_vector({1, 2, 3, 4}, {2, 2}).requires_grad_();
    Tensor mask = Tensor::from_vector({0, 1, 0, 0}, {2, 2});
    // the causal pattern: -inf by design, carried through the scaling into softmax
    Tensor w = softmax(div(masked_fill(s, mask, -std::numeric_limits<float>::infinity()), 2.0f));
    CHECK(w.to_vector()[1] == 0.0f);
    sum(w).backward();
    // an Inf that no input holds is an overflow: flagged where it is made
    Tensor big = Tensor::from_vector({100, 1}, {2}).requires_grad_();
    REQUIRE_THROWS_WITH(exp(big),
                        Catch::Contains("exp") && Catch::Contains("inf") && Catch::Contains("made here"));
    // NaN stays an anomaly everywhere, even from an op that may output -inf
    Tensor n = Tensor::from_vector({std::nanf(""), 1, 2, 3}, {2, 2}).requires_grad_();
    REQUIRE_THROWS_WITH(masked_fill(n, mask, -std::numeric_limits<float>::infinity()),
                        Catch::Contains("masked_fill") && Catch::Contains("nan"));
    set_detect_anomaly(false);
}

TEST_CASE("sub, div, sub_scalar and sqrt are one tape entry each, under their own names", "[tape]") {
    Tensor a = test::leaf({2, 3}, 6), b = test::leaf({3}, 7, 0.5f, 2.0f);
    struct Case {
        const char* op;
        std::function<Tensor()> run;
    };
    std::vector<Case> cases = {{"sub", [&] { return sub(a, b); }},
                               {"div", [&] { return div(a, b); }},
                               {"sub_scalar", [&] { return sub(a, 1.5f); }},
                               {"sqrt", [&] { return sqrt(b); }}};
    for (auto& c : cases) {
        INFO(c.op);
        tape().clear();
        Tensor y = c.run();
        REQUIRE(tape().size() == 1);
        CHECK(std::string(tape().entries()[0].op) == c.op);
        std::ostringstream dump;
        tape().dump(dump);
        CHECK_THAT(dump.str(), Catch::Contains(c.op) && !Catch::Contains("pow") && !Catch::Contains("neg"));
    }
    tape().clear();
}

// Data parallelism (train/dist/grad_reducer.h) starts a bucket's allreduce as soon as its
// gradients are final: the listener must hear of a leaf exactly when the walk
// has passed its first use in the forward, with the gradient complete.
TEST_CASE("the backward listener hears of each leaf once its gradient is final", "[tape]") {
    Tensor a = test::leaf({3}, 11), b = test::leaf({3}, 12), c = test::leaf({3}, 13);
    struct Log : BackwardListener {
        std::vector<std::pair<TensorImpl*, std::vector<float>>> ready;
        int entries = 0;
        void grad_ready(TensorImpl* leaf) override {
            Tensor g(leaf->grad);
            ready.emplace_back(leaf, g.defined() ? g.to_vector() : std::vector<float>{});
        }
        void entry_done() override { ++entries; }
    } log;
    // a is used first (and again last), b second, c last: c and b become final
    // before a, and a only after its first use is walked.
    Tensor h = mul(a, b);               // entry 0: a, b
    Tensor y = sum(add(mul(h, c), a));  // entries 1 (c), 2 (a again), 3
    set_backward_listener(&log);
    y.backward();
    set_backward_listener(nullptr);
    REQUIRE(log.ready.size() == 3);
    // c after entry 1; a and b (in either order) after entry 0, walked last.
    CHECK(log.ready[0].first == c.impl());
    bool ab = log.ready[1].first == a.impl() && log.ready[2].first == b.impl();
    bool ba = log.ready[1].first == b.impl() && log.ready[2].first == a.impl();
    CHECK((ab || ba));
    CHECK(log.entries == 4);
    // What the listener saw is the final gradient.
    for (auto& [leaf, seen] : log.ready) CHECK(seen == Tensor(leaf->grad).to_vector());
    std::vector<float> bv = b.to_vector(), cv = c.to_vector(), ga = a.grad().to_vector();
    for (int i = 0; i < 3; ++i) CHECK(ga[i] == bv[i] * cv[i] + 1.0f);  // d/da (a b c + a)
}
