// core/vmath.h: the documented ulp bounds, checked over every finite float32
// input against double-precision glibc exp / tanh, the special values, and the
// vectorised loop giving the scalar call's bits.
#include <catch2/catch.hpp>
#include <omp.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/vmath.h"

using namespace tg;

namespace {

// |y - ref| in units of the float spacing at |ref| (2^-149 below the normals);
// infinite when y is not finite but ref rounds to a finite float, or vice versa.
double ulp_error(float y, double ref) {
    if (std::isnan(ref)) return std::isnan(y) ? 0 : INFINITY;
    if (std::isinf(static_cast<float>(ref)) || std::isinf(y))
        return static_cast<float>(ref) == y ? 0 : INFINITY;
    // The spacing from the reference's binary exponent, by bits (ilogb and ldexp
    // per element cost more than the reference itself).
    int64_t e = static_cast<int64_t>((std::bit_cast<uint64_t>(std::fabs(ref)) >> 52) & 0x7ff) - 1023;
    double ulp = std::bit_cast<double>(static_cast<uint64_t>(std::max<int64_t>(e, -126) - 23 + 1023) << 52);
    return std::fabs(static_cast<double>(y) - ref) / ulp;
}

// The largest ulp error of f against ref over the float bit patterns [b0, b1),
// both signs when `both_signs`; blocks of inputs go through f in a plain loop
// (the vectorised form the ops use), the reference per element, on every thread.
template <class F, class R>
double max_ulp(uint32_t b0, uint32_t b1, bool both_signs, F f, R ref, float* worst_x) {
    const int64_t block = 4096, n = int64_t{b1} - b0, blocks = (n + block - 1) / block;
    double worst = 0;
    float wx = 0;
#pragma omp parallel
    {
        std::vector<float> x(block), y(block);
        double my_worst = 0;
        float my_x = 0;
#pragma omp for schedule(dynamic, 64)
        for (int64_t k = 0; k < blocks; ++k) {
            for (int s = 0; s < (both_signs ? 2 : 1); ++s) {
                int64_t i0 = b0 + k * block, m = std::min<int64_t>(block, b1 - i0);
                for (int64_t i = 0; i < m; ++i)
                    x[i] = std::bit_cast<float>(static_cast<uint32_t>(i0 + i) | (s ? 0x80000000u : 0u));
                for (int64_t i = 0; i < m; ++i) y[i] = f(x[i]);
                for (int64_t i = 0; i < m; ++i) {
                    double err = ulp_error(y[i], ref(static_cast<double>(x[i])));
                    if (err > my_worst) my_worst = err, my_x = x[i];
                }
            }
        }
#pragma omp critical
        if (my_worst > worst) worst = my_worst, wx = my_x;
    }
    *worst_x = wx;
    return worst;
}

constexpr uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }

// Double references. Near 0 the truncated series is as exact as the libm call and
// far cheaper, and most float patterns are there: 1 + x for |x| < 2^-24 (error
// x^2/2 < 2^-49), x - x^3/3 for |x| < 2^-12 (error 2x^5/15 < 2^-50 relative).
double exp_ref(double x) { return std::fabs(x) < 0x1p-24 ? 1.0 + x : std::exp(x); }
double tanh_ref(double x) { return std::fabs(x) < 0x1p-12 ? x - x * x * x / 3.0 : std::tanh(x); }

}  // namespace

TEST_CASE("vm::exp is within its ulp bound for every float in [-104, 89]", "[vmath]") {
    float wx = 0;
    // Positive patterns from +0 up to 89, and negative ones from -0 down to -104.
    double pos = max_ulp(0, bits_of(89.0f) + 1, false, vm::exp, exp_ref, &wx);
    INFO("worst positive input " << wx);
    CHECK(pos <= vm::kExpMaxUlp);
    double neg = max_ulp(0x80000000u, bits_of(-104.0f) + 1, false, vm::exp, exp_ref, &wx);
    INFO("worst negative input " << wx);
    CHECK(neg <= vm::kExpMaxUlp);
    WARN("vm::exp max error: " << pos << " ulp (x >= 0), " << neg << " ulp (x <= 0)");
}

TEST_CASE("vm::tanh is within its ulp bound for every finite float", "[vmath]") {
    float wx = 0;
    // Dense with the reference up to 10; above, tanh rounds to 1 in float
    // (1 - tanh(10) ~ 4e-9 < 2^-25), so every larger float is checked against 1.
    double err = max_ulp(0, bits_of(10.0f) + 1, true, vm::tanh, tanh_ref, &wx);
    INFO("worst input " << wx);
    CHECK(err <= vm::kTanhMaxUlp);
    double far = max_ulp(
        bits_of(10.0f), bits_of(std::numeric_limits<float>::max()) + 1, true, vm::tanh,
        [](double x) { return x > 0 ? 1.0 : -1.0; }, &wx);
    INFO("worst input above 10 " << wx);
    CHECK(far == 0);
    WARN("vm::tanh max error: " << err << " ulp");
}

TEST_CASE("vm::exp and vm::tanh at the special values and the ends of their ranges", "[vmath]") {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    CHECK(vm::exp(-inf) == 0.0f);
    CHECK(vm::exp(inf) == inf);
    CHECK(std::isnan(vm::exp(nan)));
    CHECK(vm::exp(0.0f) == 1.0f);
    CHECK(vm::exp(-0.0f) == 1.0f);
    CHECK(vm::exp(88.72283935546875f) == std::exp(88.72283935546875f));  // the largest finite result
    CHECK(vm::exp(88.7228469848632812f) == inf);
    CHECK(vm::exp(-200.0f) == 0.0f);
    CHECK(vm::exp(-103.9f) > 0.0f);  // subnormal results are not flushed
    CHECK(vm::tanh(inf) == 1.0f);
    CHECK(vm::tanh(-inf) == -1.0f);
    CHECK(std::isnan(vm::tanh(nan)));
    CHECK(std::signbit(vm::tanh(-0.0f)));
    CHECK(vm::tanh(1e-40f) == 1e-40f);
}

TEST_CASE("a vectorised loop of vm::exp gives the scalar call's bits, whatever its remainder", "[vmath]") {
    // The ops split loops at any index (parallel_for): the vector body and the
    // scalar remainder must agree element for element.
    std::vector<float> x(1037);
    for (size_t i = 0; i < x.size(); ++i) x[i] = -90.0f + 0.1731f * static_cast<float>(i);
    for (size_t start : {size_t{0}, size_t{1}, size_t{7}}) {
        std::vector<float> y(x.size() - start), t(x.size() - start);
        for (size_t i = 0; i < y.size(); ++i) y[i] = vm::exp(x[start + i]);
        for (size_t i = 0; i < t.size(); ++i) t[i] = vm::tanh(x[start + i] / 8.0f);
        for (size_t i = 0; i < y.size(); ++i) {
            volatile float xi = x[start + i];  // a scalar call the vectoriser cannot merge
            REQUIRE(std::bit_cast<uint32_t>(y[i]) == std::bit_cast<uint32_t>(vm::exp(xi)));
            volatile float ui = x[start + i] / 8.0f;
            REQUIRE(std::bit_cast<uint32_t>(t[i]) == std::bit_cast<uint32_t>(vm::tanh(ui)));
        }
    }
}
