// cross_entropy from logits, fused log-softmax + NLL (PyTorch's F.cross_entropy):
//   lse_r = log sum_v exp(x[r, v]),   loss = (1/n) sum over kept rows of (lse_r - x[r, t_r])
//   dx[r, v] = (softmax(x_r)[v] - [v == t_r]) * g / n    (0 on ignored rows)
// logits [V] (one row), [N, V] or [B, T, V]; targets N ids; rows whose target is ignore_index are
// left out and n counts the rest. Fused: the [N, V] log-probabilities are never
// stored, only lse per row. dx[r, v] reads x[r, v] alone, so with memory saving
// on the tape may hand backward the logits' own buffer for their gradient
// (TapeEntry::grad_over_input, core/memory.h): one [N, V] buffer, not two.
// exp is vm::exp (core/vmath.h, <= 1 ulp): the forward reads a row twice (the
// max, then exp and its sum in one pass through a block on the stack), the
// backward once (exp, scale and the write of the gradient in one pass). The
// gradient cannot be written in the forward: g is known only in backward, and
// keeping softmax there would be the [N, V] buffer the fusion saves.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "core/ops.h"
#include "core/parallel.h"
#include "core/vmath.h"

namespace tg {
namespace {

// max_v x_v in 16 lanes (exact, so the serial loop's value; see softmax.cpp).
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

// log sum_v exp(x_v) = m + log sum_v exp(x_v - m): exp of a block of 512 into a
// stack buffer (the vectorised loop), summed into 8 double lanes in a fixed order.
float row_lse(const float* x, int64_t n) {
    constexpr int64_t B = 512;
    constexpr int L = 8;
    const float m = row_max(x, n);
    float e[B];
    double lane[L] = {};
    for (int64_t b = 0; b < n; b += B) {
        const int64_t len = std::min(B, n - b);
        for (int64_t i = 0; i < len; ++i) e[i] = vm::exp(x[b + i] - m);
        int64_t i = 0;
        for (; i + L <= len; i += L)
            for (int j = 0; j < L; ++j) lane[j] += static_cast<double>(e[i + j]);
        for (; i < len; ++i) lane[0] += static_cast<double>(e[i]);
    }
    double s = 0;
    for (int j = 0; j < L; ++j) s += lane[j];
    return m + static_cast<float>(std::log(s));
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Ids& targets, int64_t ignore_index, Loc loc) {
    if (logits.dim() < 1)
        fail("cross_entropy", loc,
             "logits must be [V], [N, V] or [B, T, V], got " + shape_str(logits.shape()));
    const Shape& ls = logits.shape();
    int64_t V = ls.back(), N = numel_of(Shape(ls.begin(), ls.end() - 1));  // rows, also when V = 0
    if (targets.numel() != N)
        fail("cross_entropy", loc,
             fmt::format("logits {} have {} rows but targets {} have {} ids", shape_str(logits.shape()), N,
                         shape_str(targets.shape), targets.numel()));
    Tensor xc = logits.is_contiguous() ? logits : logits.clone();
    for (int64_t r = 0; r < N; ++r) {  // validate first: no throwing from the parallel loop
        int64_t t = targets.data[r];
        if (t != ignore_index && (t < 0 || t >= V))
            fail("cross_entropy", loc,
                 fmt::format("target {} at row {} is out of bounds: outside [0, {}) for logits {}", t, r, V,
                             shape_str(ls)));
    }
    std::vector<float> lse(static_cast<size_t>(N));
    const int64_t rows_grain =
        std::max<int64_t>(1, kElementGrain / 8 / std::max<int64_t>(V, 1));  // exp-bound
    parallel_for(N, rows_grain, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            if (targets.data[r] == ignore_index) continue;
            lse[r] = row_lse(xc.data() + r * V, V);
        }
    });
    double total = 0;  // in row order, serially: the loss does not depend on the thread count
    int64_t kept = 0;
    for (int64_t r = 0; r < N; ++r) {
        int64_t t = targets.data[r];
        if (t == ignore_index) continue;
        total += lse[r] - xc.data()[r * V + t];
        kept++;
    }
    Tensor out =
        Tensor::full({}, kept ? static_cast<float>(total / kept) : std::numeric_limits<float>::quiet_NaN());
    if (!needs_record({&logits})) return out;
    record("cross_entropy", loc, {logits}, out,
           [xc, lse, targets, ignore_index, N, V, kept, rows_grain](const Tensor& g, std::span<GradSlot> gi) {
               float scale = g.item() / static_cast<float>(kept);
               parallel_for(N, rows_grain, [&](int64_t r0, int64_t r1) {
                   for (int64_t r = r0; r < r1; ++r) {
                       int64_t t = targets.data[r];
                       const float* x = xc.data() + r * V;
                       float* d = gi[0].data + r * V;
                       if (t == ignore_index) {
                           if (!gi[0].accumulate) std::fill_n(d, V, 0.0f);
                           continue;
                       }
                       float l = lse[r];
                       if (gi[0].accumulate)
                           for (int64_t v = 0; v < V; ++v) d[v] += vm::exp(x[v] - l) * scale;
                       else
                           for (int64_t v = 0; v < V; ++v) d[v] = vm::exp(x[v] - l) * scale;
                       d[t] -= scale;
                   }
               });
           });
    if (out.requires_grad()) tape().entries().back().grad_over_input = 0;
    return out;
}

}  // namespace tg
