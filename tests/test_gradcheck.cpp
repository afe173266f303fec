// gradcheck must catch a backward that is wrong by 1% in a single element,
// whether the element's gradient is large or small.
#include <catch2/catch.hpp>

#include "core/tapegrad.h"
#include "test_util.h"

using namespace tg;

namespace {

// y = a * b (same shapes), with a backward whose da is scaled by `factor` at one element.
Tensor skewed_mul(const Tensor& a, const Tensor& b, int64_t bad, float factor) {
    Tensor out = Tensor::empty(a.shape());
    for (int64_t i = 0; i < a.numel(); ++i) out.data()[i] = a.data()[i] * b.data()[i];
    record("skewed_mul", Loc::current(), {a, b}, out,
           [a, b, bad, factor](const Tensor& g, std::span<GradSlot> gi) {
               for (int64_t i = 0; i < a.numel(); ++i) {
                   float f = i == bad ? factor : 1.0f;
                   if (gi[0]) gi[0].store(i, g.data()[i] * b.data()[i] * f);
                   if (gi[1]) gi[1].store(i, g.data()[i] * a.data()[i]);
               }
           });
    return out;
}

// A backward that forgets one element (only visible through NaN-filled buffers).
Tensor forgetful_copy(const Tensor& a) {
    Tensor out = a.clone();
    record("forgetful", Loc::current(), {a}, out, [](const Tensor& g, std::span<GradSlot> gi) {
        for (int64_t i = 1; i < g.numel(); ++i) gi[0].store(i, g.data()[i]);
    });
    return out;
}

// A backward that assigns where it must add.
Tensor overwriting_copy(const Tensor& a) {
    Tensor out = a.clone();
    record("overwriting", Loc::current(), {a}, out, [](const Tensor& g, std::span<GradSlot> gi) {
        for (int64_t i = 0; i < g.numel(); ++i) gi[0].data[i] = g.data()[i];
    });
    return out;
}

}  // namespace

TEST_CASE("gradcheck passes a correct backward", "[gradcheck]") {
    Tensor a = test::leaf({4, 5}, 1), b = test::leaf({4, 5}, 2);
    auto r = gradcheck([](auto& x) { return skewed_mul(x[0], x[1], -1, 1.0f); }, {a, b});
    INFO(r.report);
    CHECK(r.ok);
}

TEST_CASE("gradcheck fails a backward off by 1% in one element", "[gradcheck]") {
    // Each element of b in turn becomes the only wrong one; b spans [0.2, 1], so the
    // wrong gradient ranges from large to small.
    Tensor a = test::leaf({4, 5}, 3), b = test::leaf({4, 5}, 4, 0.2f, 1.0f);
    for (int64_t bad = 0; bad < 20; ++bad) {
        for (float factor : {1.01f, 0.99f}) {
            auto r =
                gradcheck([bad, factor](auto& x) { return skewed_mul(x[0], x[1], bad, factor); }, {a, b});
            INFO("bad element " << bad << ", factor " << factor << ": " << r.report);
            CHECK_FALSE(r.ok);
            CHECK_THAT(r.report, Catch::Contains("input 0 element " + std::to_string(bad)));
        }
    }
}

TEST_CASE("gradcheck fails a backward that leaves an element unwritten", "[gradcheck]") {
    auto r = gradcheck([](auto& x) { return forgetful_copy(x[0]); }, {test::leaf({3, 3}, 5)});
    CHECK_FALSE(r.ok);
}

TEST_CASE("gradcheck fails a backward that overwrites instead of adding", "[gradcheck]") {
    auto r = gradcheck([](auto& x) { return overwriting_copy(x[0]); }, {test::leaf({3, 3}, 6)});
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.report, Catch::Contains("does not accumulate"));
}
