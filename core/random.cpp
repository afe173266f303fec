#include "core/random.h"

#include <cmath>
#include <cstring>
#include <numbers>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "core/parallel.h"

namespace tg {

void Generator::manual_seed(uint64_t seed) {
    seed_ = seed;
    engine_.seed(static_cast<uint32_t>(seed & 0xffffffffULL));  // PyTorch keeps the low 32 bits
    has_next_normal_ = false;
}

uint64_t Generator::random64() {
    uint64_t hi = random();
    uint64_t lo = random();
    return (hi << 32) | lo;
}

float Generator::uniform_float(float from, float to) {
    float x = static_cast<float>(random() & ((1u << 24) - 1)) * (1.0f / 16777216.0f);
    // PyTorch's AVX2 kernel is compiled with FMA contraction: one rounding.
    return std::fma(x, to - from, from);
}

double Generator::uniform_double(double from, double to) {
    double x = static_cast<double>(random64() & ((1ULL << 53) - 1)) * (1.0 / 9007199254740992.0);
    return x * (to - from) + from;
}

void Generator::fill_uniform(float* data, int64_t n, double from, double to) {
    float f = static_cast<float>(from), t = static_cast<float>(to);
    for (int64_t i = 0; i < n; ++i) data[i] = uniform_float(f, t);
}

// PyTorch's normal_distribution<double>: u1, u2 uniform doubles,
// r = sqrt(-2 log(1 - u2)), theta = 2 pi u1; returns r cos(theta), caches r sin(theta).
double Generator::normal_double(double mean, double std) {
    if (has_next_normal_) {
        has_next_normal_ = false;
        return next_normal_ * std + mean;
    }
    double u1 = uniform_double(0.0, 1.0);
    double u2 = uniform_double(0.0, 1.0);
    double r = std::sqrt(-2.0 * std::log(1.0 - u2));
    double theta = 2.0 * std::numbers::pi * u1;
    next_normal_ = r * std::sin(theta);
    has_next_normal_ = true;
    return r * std::cos(theta) * std + mean;
}

// PyTorch's AVX2 normal_ transforms 16 uniforms at a time with the cephes-style
// polynomials of avx_mathfun (log256_ps, sincos256_ps), compiled with FMA
// contraction. These scalar versions follow the same steps; std::fma stands where
// a multiply feeds a single add.

// log(x) for x in (0, 1]: x = m 2^e with m in [0.5, 1); if m < sqrt(1/2), m = 2m,
// e -= 1; with t = m - 1: log x = t + (t^3 P(t) - e 2.12194440e-4 - t^2 / 2) + e 0.693359375.
static float cephes_logf(float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    int32_t imm0 = static_cast<int32_t>(bits >> 23) - 0x7f;
    bits = (bits & ~0x7f800000u) | 0x3f000000u;  // mantissa with exponent of 0.5
    float m;
    std::memcpy(&m, &bits, 4);
    float e = static_cast<float>(imm0) + 1.0f;
    bool small = m < 0.707106781186547524f;
    float tmp = small ? m : 0.0f;
    m = m - 1.0f;
    e = e - (small ? 1.0f : 0.0f);
    m = m + tmp;
    float z = m * m;
    float y = 7.0376836292E-2f;
    y = std::fma(y, m, -1.1514610310E-1f);
    y = std::fma(y, m, 1.1676998740E-1f);
    y = std::fma(y, m, -1.2420140846E-1f);
    y = std::fma(y, m, 1.4249322787E-1f);
    y = std::fma(y, m, -1.6668057665E-1f);
    y = std::fma(y, m, 2.0000714765E-1f);
    y = std::fma(y, m, -2.4999993993E-1f);
    y = std::fma(y, m, 3.3333331174E-1f);
    y = y * m;
    y = std::fma(y, z, e * -2.12194440e-4f);  // GCC fuses y * z, the add's first operand
    y = std::fma(-z, 0.5f, y);
    m = m + y;
    return std::fma(e, 0.693359375f, m);
}

// sin and cos of x >= 0: j = (int(x 4/pi) + 1) & ~1 octant, x reduced by j pi/4 in
// three parts, then the cos polynomial or the sin polynomial per octant and sign.
static void cephes_sincosf(float x, float& s, float& c) {
    float sign_sin = x < 0 ? -1.0f : 1.0f;
    x = std::fabs(x);
    int32_t j = static_cast<int32_t>(x * 1.27323954473516f);
    j = (j + 1) & ~1;
    float y = static_cast<float>(j);
    bool swap_sin = (j & 4) != 0;
    bool poly_sin = (j & 2) == 0;
    x = std::fma(y, -0.78515625f, x);
    x = std::fma(y, -2.4187564849853515625e-4f, x);
    x = std::fma(y, -3.77489497744594108e-8f, x);
    bool cos_neg = ((j - 2) & 4) == 0;
    float z = x * x;
    float yc = 2.443315711809948E-005f;
    yc = std::fma(yc, z, -1.388731625493765E-003f);
    yc = std::fma(yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    yc = std::fma(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;
    float ys = -1.9515295891E-4f;
    ys = std::fma(ys, z, 8.3321608736E-3f);
    ys = std::fma(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = std::fma(ys, x, x);
    float sv = poly_sin ? ys : yc, cv = poly_sin ? yc : ys;
    if (swap_sin) sign_sin = -sign_sin;
    s = sv * sign_sin;
    c = cos_neg ? -cv : cv;
}

// Box-Muller over 16 uniforms: for j < 8, u1 = 1 - d[j], u2 = d[j+8],
// r = sqrt(-2 log u1), theta = 2 pi u2, d[j] = fma(r cos theta, std, mean),
// d[j+8] = fma(r sin theta, std, mean).
static void normal_fill_16(float* d, float mean, float std) {
    const float two_pi = static_cast<float>(2.0 * std::numbers::pi);
    for (int j = 0; j < 8; ++j) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = std::sqrt(-2.0f * cephes_logf(u1));
        float theta = two_pi * u2;
        float sn, cs;
        cephes_sincosf(theta, sn, cs);
        d[j] = std::fma(radius * cs, std, mean);
        d[j + 8] = std::fma(radius * sn, std, mean);
    }
}

// Tensor.normal_ on float32: with n >= 16, fill with float uniforms in [0, 1),
// transform each block of 16; when n % 16 != 0, redraw the last 16 elements
// (overlapping the previous block) and transform them again. With n < 16, one
// normal_double per element.
void Generator::fill_normal(float* data, int64_t n, double mean, double std) {
    if (n >= 16) {
        for (int64_t i = 0; i < n; ++i) data[i] = uniform_float(0.0f, 1.0f);
        float m = static_cast<float>(mean), s = static_cast<float>(std);
        for (int64_t i = 0; i + 16 <= n; i += 16) normal_fill_16(data + i, m, s);
        if (n % 16 != 0) {
            float* tail = data + n - 16;
            for (int i = 0; i < 16; ++i) tail[i] = uniform_float(0.0f, 1.0f);
            normal_fill_16(tail, m, s);
        }
    } else {
        for (int64_t i = 0; i < n; ++i) data[i] = static_cast<float>(normal_double(mean, std));
    }
}

// Element i uses words 2i (high) and 2i+1 (low) of the stream, as
// uniform_double(0, 1) < p per element would. Drawing the words is the serial
// part; the comparisons run on the thread pool.
void Generator::fill_bernoulli(float* data, int64_t n, double p) {
    thread_local std::vector<uint32_t> words;  // reused: no fresh pages per call
    words.resize(static_cast<size_t>(2 * n));
    engine_.fill(words.data(), 2 * n);
    // u = k 2^-53 with k = r & (2^53 - 1) an integer, so u < p <=> k < ceil(p 2^53):
    // an integer compare (p 2^53 is exact in double), no int-to-double conversion.
    const int64_t threshold = p <= 0.0   ? 0
                              : p >= 1.0 ? (int64_t{1} << 53)
                                         : static_cast<int64_t>(std::ceil(p * 9007199254740992.0));
    const uint32_t* w = words.data();
    parallel_for(n, kElementGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            int64_t k = static_cast<int64_t>(((static_cast<uint64_t>(w[2 * i]) << 32) | w[2 * i + 1]) &
                                             ((1ULL << 53) - 1));
            data[i] = k < threshold ? 1.0f : 0.0f;
        }
    });
}

// Fisher-Yates from the front: for i < n-1, z = random() % (n - i), swap(r[i], r[i+z]).
std::vector<int64_t> Generator::randperm(int64_t n) {
    std::vector<int64_t> r(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) r[i] = i;
    for (int64_t i = 0; i + 1 < n; ++i) {
        int64_t z = static_cast<int64_t>(random() % static_cast<uint64_t>(n - i));
        std::swap(r[i], r[i + z]);
    }
    return r;
}

int64_t Generator::random_int64() { return static_cast<int64_t>(random64() % (1ULL << 63)); }

std::string Generator::state() const {
    std::ostringstream os;
    os << seed_ << ' ' << has_next_normal_ << ' ';
    os.precision(17);
    os << next_normal_ << ' ' << engine_;
    return os.str();
}

void Generator::set_state(const std::string& s) {
    std::istringstream is(s);
    is >> seed_ >> has_next_normal_ >> next_normal_ >> engine_;
    if (!is) throw std::runtime_error("tapegrad: Generator::set_state: malformed generator state");
}

Generator& default_generator() {
    static Generator g;
    return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace tg

namespace tg {
double linear_weight_bound(int64_t fan_in) {
    double gain = std::sqrt(2.0 / (1.0 + 5.0));  // calculate_gain('leaky_relu', sqrt(5))
    double std_ = gain / std::sqrt(static_cast<double>(fan_in));
    return std::sqrt(3.0) * std_;
}
double linear_bias_bound(int64_t fan_in) {
    return fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
}
}  // namespace tg
