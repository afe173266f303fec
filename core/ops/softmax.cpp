// softmax and log_softmax over the last dim, stabilised by the row max.
// A row that is entirely -inf gives NaN, as in PyTorch (anomaly mode reports it).
// exp is vm::exp (core/vmath.h, <= 1 ulp, vectorised): each loop below is a plain
// element loop the compiler vectorises, and the row sums are double lanes in a
// fixed order (sum_exp), so rows do not depend on the thread count.
#include <cmath>
#include <limits>

#include "core/ops.h"
#include "core/ops/broadcast.h"
#include "core/parallel.h"
#include "core/vmath.h"

namespace tg {
namespace {

Tensor rows_of(const Tensor& a) {
    if (a.is_contiguous()) return a;
    Tensor c = Tensor::empty(a.shape());  // strided input: one gather so rows are contiguous
    gather_contiguous(a, c.data());
    return c;
}

// max_i x_i in 16 lanes (a float max reduction is not reassociable for the
// vectoriser; max is exact, so the lanes give the serial loop's value, up to the
// sign of a zero maximum, which x - m does not see).
float row_max(const float* x, int64_t n) {
    constexpr int L = 16;
    float lane[L];
    for (float& l : lane) l = -std::numeric_limits<float>::infinity();
    int64_t i = 0;
    for (; i + L <= n; i += L)
        for (int j = 0; j < L; ++j) lane[j] = std::max(lane[j], x[i + j]);
    float m = -std::numeric_limits<float>::infinity();
    for (; i < n; ++i) m = std::max(m, x[i]);
    for (float l : lane) m = std::max(m, l);
    return m;
}

// sum_i x_i in double: 8 double lanes (x_{i} to lane i mod 8), then the lanes in
// order. A fixed association, so the same bits on any thread count; double
// keeps the sum's rounding far below a float ulp of the result.
double sum_double(const float* x, int64_t n) {
    constexpr int L = 8;
    double lane[L] = {};
    int64_t i = 0;
    for (; i + L <= n; i += L)
        for (int j = 0; j < L; ++j) lane[j] += static_cast<double>(x[i + j]);
    double s = 0;
    for (int j = 0; j < L; ++j) s += lane[j];
    for (; i < n; ++i) s += static_cast<double>(x[i]);
    return s;
}

// f(r) for every row r, rows split over the pool (exp-bound rows, so a smaller
// element grain than plain elementwise loops).
template <class F>
void each_row(int64_t rows, int64_t n, F&& f) {
    parallel_for(rows, std::max<int64_t>(1, kElementGrain / 8 / std::max<int64_t>(n, 1)),
                 [&](int64_t r0, int64_t r1) {
                     for (int64_t r = r0; r < r1; ++r) f(r);
                 });
}

// The rows of a (contiguous), their length and count. A 0-d tensor is one row of
// one element, as PyTorch's softmax(x, -1) of a scalar (1; log_softmax 0).
struct Rows {
    Tensor t;
    int64_t n, count;
};
Rows rows_split(const Tensor& a) {
    int64_t n = a.dim() == 0 ? 1 : a.shape().back();
    return {rows_of(a), n, a.numel() / std::max<int64_t>(n, 1)};
}

}  // namespace

// y_i = exp(x_i - m) / sum_j exp(x_j - m),  m = max_j x_j
//   dx_i = y_i (g_i - sum_j g_j y_j)
Tensor softmax(const Tensor& a, Loc loc) {
    Rows rw = rows_split(a);  // plain locals: Clang 14 cannot capture structured bindings
    Tensor ac = rw.t;
    int64_t n = rw.n, rows = rw.count;
    Tensor out = Tensor::empty(a.shape());
    each_row(rows, n, [&](int64_t r) {
        const float* x = ac.data() + r * n;
        float* y = out.data() + r * n;
        float m = row_max(x, n);
        for (int64_t i = 0; i < n; ++i) y[i] = vm::exp(x[i] - m);
        float inv = static_cast<float>(1.0 / sum_double(y, n));
        for (int64_t i = 0; i < n; ++i) y[i] *= inv;
    });
    if (!needs_record({&a})) return out;
    record("softmax", loc, {a}, out, [out, n, rows](const Tensor& g, std::span<GradSlot> gi) {
        each_row(rows, n, [&](int64_t r) {
            const float* y = out.data() + r * n;
            const float* gr = g.data() + r * n;
            double dot = 0;
            for (int64_t i = 0; i < n; ++i) dot += static_cast<double>(gr[i]) * y[i];
            const float fd = static_cast<float>(dot);
            float* d = gi[0].data + r * n;
            if (gi[0].accumulate)
                for (int64_t i = 0; i < n; ++i) d[i] += y[i] * (gr[i] - fd);
            else
                for (int64_t i = 0; i < n; ++i) d[i] = y[i] * (gr[i] - fd);
        });
    });
    return out;
}

// y_i = x_i - m - log sum_j exp(x_j - m)
//   dx_i = g_i - exp(y_i) sum_j g_j
Tensor log_softmax(const Tensor& a, Loc loc) {
    Rows rw = rows_split(a);  // plain locals: Clang 14 cannot capture structured bindings
    Tensor ac = rw.t;
    int64_t n = rw.n, rows = rw.count;
    Tensor out = Tensor::empty(a.shape());
    each_row(rows, n, [&](int64_t r) {
        const float* x = ac.data() + r * n;
        float* y = out.data() + r * n;
        float m = row_max(x, n);
        for (int64_t i = 0; i < n; ++i) y[i] = vm::exp(x[i] - m);  // y as scratch, overwritten below
        float lse = m + static_cast<float>(std::log(sum_double(y, n)));
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] - lse;
    });
    if (!needs_record({&a})) return out;
    record("log_softmax", loc, {a}, out, [out, n, rows](const Tensor& g, std::span<GradSlot> gi) {
        each_row(rows, n, [&](int64_t r) {
            const float* y = out.data() + r * n;
            const float* gr = g.data() + r * n;
            const float gs = static_cast<float>(sum_double(gr, n));
            float* d = gi[0].data + r * n;
            if (gi[0].accumulate)
                for (int64_t i = 0; i < n; ++i) d[i] += gr[i] - vm::exp(y[i]) * gs;
            else
                for (int64_t i = 0; i < n; ++i) d[i] = gr[i] - vm::exp(y[i]) * gs;
        });
    });
    return out;
}

}  // namespace tg
