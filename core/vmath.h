// Branch-free float32 exp, expm1 and tanh for the element-wise hot loops
// (softmax, log_softmax, cross_entropy, GELU), written so that GCC's loop
// vectoriser turns a loop calling them into SIMD code at -O3 -march=native.
//
// Why not std::exp / std::tanh: glibc's are scalar calls (~14 ns a logit in
// cross_entropy, ~8 ns an element in GELU, issue 37); these are a handful of
// multiplies, adds, selects and integer shifts per element, all of which have
// vector forms. Plain IEEE float operations with no contraction
// (-ffp-contract=off) and no -ffast-math round the same in a vector lane as in
// scalar code, so a loop's vector body and its scalar remainder give the same
// bits, and the results do not depend on how a parallel_for splits the loop.
//
// The math (x a float, n an integer, r the reduced argument):
//   n = round(x / ln 2),  r = (x - n * ln2_hi) - n * ln2_lo,   |r| <= ln2 / 2 (+ rounding)
//   ln2_hi has 15 significant bits, so n * ln2_hi is exact for |n| < 512 and
//   x - n * ln2_hi is exact (Sterbenz); ln2_lo carries the rest of ln 2.
//   expm1(r) ~ r + r^2 (1/2! + r (1/3! + ... + r^6 / 8!))   (Taylor, degree 8:
//   truncation < |r|^9 / 9! / |r| ~ 2e-10 relative on |r| <= 0.347, far below an ulp)
//   exp(x)   = 2^n (1 + expm1(r)),   2^n applied as 2^(n/2) 2^(n - n/2) so that a
//              subnormal result is rounded once, in the last product
//   expm1(x) = 2^n expm1(r) + (2^n - 1)   (2^n - 1 exact for -24 <= n <= 24)
//   tanh(u)  = sign(u) t / (t + 2),  t = expm1(2 |u|)   (no cancellation near 0)
// Domains: exp is 0 below -103.98 (below half the least subnormal), +inf above
// 88.7228 (above FLT_MAX); tanh(|u| > 10) is +-1 in float; NaN gives NaN.
//
// Error bounds, measured over every finite float32 input against a double
// reference (tests/test_vmath.cpp, which fails when a bound is exceeded):
//   exp   <= kExpMaxUlp ulp   on [-104, 89] (outside it the result is exact: 0, inf)
//   tanh  <= kTanhMaxUlp ulp  on every finite float (odd by construction)
// An ulp here is the spacing of floats at the reference value's magnitude
// (2^-149 for subnormal results).
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

namespace tg::vm {

inline constexpr double kExpMaxUlp = 1.0;
inline constexpr double kTanhMaxUlp = 2.5;

namespace detail {

// round(v) for |v| < 2^22, to nearest even, as a float and as the integer.
// Adding 1.5 * 2^23 pushes the fraction out of the significand; the integer is
// the significand's low bits.
struct Rounded {
    float f;
    int32_t i;
};
inline Rounded round_int(float v) {
    const float magic = 12582912.0f;  // 1.5 * 2^23
    float t = v + magic;
    return {t - magic, std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(magic)};
}

// 2^n for -126 <= n <= 127, from its exponent bits.
inline float pow2i(int32_t n) { return std::bit_cast<float>((n + 127) << 23); }

// expm1(r) for |r| <= 0.35: the Taylor polynomial above, Horner from the top.
inline float expm1_poly(float r) {
    float q = 1.0f / 40320.0f;  // 1/8!
    q = q * r + 1.0f / 5040.0f;
    q = q * r + 1.0f / 720.0f;
    q = q * r + 1.0f / 120.0f;
    q = q * r + 1.0f / 24.0f;
    q = q * r + 1.0f / 6.0f;
    q = q * r + 0.5f;
    return r + (r * r) * q;
}

// n and r of the range reduction for x already clamped to [-104, 89] and not NaN.
struct Reduced {
    float r;
    int32_t n;
};
inline Reduced reduce(float x) {
    const float log2e = 1.44269504088896341f;
    const float ln2_hi = 0.693145751953125f;        // 0x3f317200: 15 significant bits
    const float ln2_lo = 1.428606820309417232e-6f;  // ln 2 - ln2_hi
    Rounded k = round_int(x * log2e);
    float r = (x - k.f * ln2_hi) - k.f * ln2_lo;
    return {r, k.i};
}

}  // namespace detail

// e^x for every float x; see the bound above.
inline float exp(float x) {
    const float lo = -104.0f, hi = 89.0f;
    float xc = x < lo ? lo : x;
    xc = xc > hi ? hi : xc;
    xc = x == x ? xc : 0.0f;  // NaN: any finite value, replaced at the end
    detail::Reduced k = detail::reduce(xc);
    float p = 1.0f + detail::expm1_poly(k.r);
    int32_t n1 = k.n >> 1, n2 = k.n - n1;  // both in [-75, 64]
    float y = (p * detail::pow2i(n1)) * detail::pow2i(n2);
    y = x > 88.72283935546875f ? std::numeric_limits<float>::infinity() : y;
    y = x < -103.97208404541015625f ? 0.0f : y;
    return x == x ? y : x;
}

// e^x - 1 for x in [-17, 0.35 + 17 ln 2]: the range tanh uses (t = expm1(2|u|), |u| <= 10
// gives x <= 20); |n| <= 29 keeps 2^n normal.
inline float expm1_nonneg(float x) {
    detail::Reduced k = detail::reduce(x);
    float s = detail::pow2i(k.n);
    float e = detail::expm1_poly(k.r);
    return s * e + (s - 1.0f);
}

// tanh(u) for every float u; see the bound above.
inline float tanh(float u) {
    uint32_t bits = std::bit_cast<uint32_t>(u);
    uint32_t sign = bits & 0x80000000u;
    float a = std::bit_cast<float>(bits ^ sign);  // |u|
    float ac = a > 10.0f ? 10.0f : a;             // tanh(10) is 1 in float
    ac = a == a ? ac : 0.0f;
    float t = expm1_nonneg(2.0f * ac);
    float y = t / (t + 2.0f);
    y = a == a ? y : u;
    return std::bit_cast<float>(std::bit_cast<uint32_t>(y) | sign);
}

}  // namespace tg::vm
