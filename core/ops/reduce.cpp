// Reductions over one dim or over everything. A tensor is seen as
// [outer, n, inner] around the reduced dim (n = its size); sums accumulate in
// double so long reductions do not drift from PyTorch's pairwise sums.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/ops.h"
#include "core/ops/broadcast.h"

namespace tg {
namespace {

struct Around {
    int64_t outer = 1, n = 1, inner = 1;
    Shape out_shape;
};

Around split(const Tensor& a, int64_t dim, bool keepdim) {
    Around s;
    for (int64_t d = 0; d < a.dim(); ++d) {
        int64_t sz = a.shape()[d];
        if (d < dim)
            s.outer *= sz;
        else if (d == dim)
            s.n = sz;
        else
            s.inner *= sz;
        if (d != dim)
            s.out_shape.push_back(sz);
        else if (keepdim)
            s.out_shape.push_back(1);
    }
    return s;
}

// The size of dim d as the reduction sees it: a 0-d tensor is one element along
// its dim 0 (= -1), as in PyTorch (mean(x, 0) of a scalar is the scalar).
int64_t reduced_size(const Tensor& a, int64_t d) { return a.dim() == 0 ? 1 : a.shape()[d]; }

Tensor contig(const Tensor& a) {
    if (a.is_contiguous()) return a;
    Tensor c = Tensor::empty(a.shape());  // a strided view: reduce over a gathered copy
    gather_contiguous(a, c.data());
    return c;
}

// out[o, i] = scale * sum_k a[o, k, i];  da[o, k, i] = scale * g[o, i].
// dim < 0 reduces over everything (a scalar result).
Tensor sum_scaled(const Tensor& a, int64_t dim, bool keepdim, float scale_div, const char* op,
                  const Loc& loc) {
    Tensor ac = contig(a);
    Around s = dim >= 0 ? split(a, dim, keepdim) : Around{1, a.numel(), 1, {}};
    Tensor out = Tensor::empty(s.out_shape);
    const float* pa = ac.data();
    for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < s.inner; ++i) {
            double acc = 0;
            for (int64_t k = 0; k < s.n; ++k) acc += pa[(o * s.n + k) * s.inner + i];
            out.data()[o * s.inner + i] = static_cast<float>(acc / scale_div);
        }
    record(op, loc, {a}, out, [s, scale_div](const Tensor& g, std::span<GradSlot> gi) {
        for (int64_t o = 0; o < s.outer; ++o)
            for (int64_t k = 0; k < s.n; ++k)
                for (int64_t i = 0; i < s.inner; ++i)
                    gi[0].store((o * s.n + k) * s.inner + i, g.data()[o * s.inner + i] / scale_div);
    });
    return out;
}

}  // namespace

Tensor sum(const Tensor& a, Loc loc) { return sum_scaled(a, -1, false, 1.0f, "sum", loc); }

Tensor sum(const Tensor& a, int64_t dim, bool keepdim, Loc loc) {
    return sum_scaled(a, wrap_dim(dim, a.dim(), "sum", loc), keepdim, 1.0f, "sum", loc);
}

Tensor mean(const Tensor& a, Loc loc) {
    return sum_scaled(a, -1, false, static_cast<float>(a.numel()), "mean", loc);
}

Tensor mean(const Tensor& a, int64_t dim, bool keepdim, Loc loc) {
    int64_t d = wrap_dim(dim, a.dim(), "mean", loc);
    return sum_scaled(a, d, keepdim, static_cast<float>(reduced_size(a, d)), "mean", loc);
}

// var: m = mean_k a[k];  out = sum_k (a[k] - m)^2 / (n - unbiased)
//   da[k] = g * 2 (a[k] - m) / (n - unbiased)      (the m-term sums to zero)
Tensor var(const Tensor& a, int64_t dim, bool keepdim, bool unbiased, Loc loc) {
    int64_t d = wrap_dim(dim, a.dim(), "var", loc);
    Tensor ac = contig(a);
    Around s = split(a, d, keepdim);
    // PyTorch's max(0, n - correction): n = 0, or n = 1 unbiased, divides by 0 (NaN, as PyTorch)
    float denom = static_cast<float>(std::max<int64_t>(0, s.n - (unbiased ? 1 : 0)));
    Tensor out = Tensor::empty(s.out_shape);
    Tensor means = Tensor::empty(s.out_shape);
    const float* pa = ac.data();
    for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < s.inner; ++i) {
            double m = 0, q = 0;
            for (int64_t k = 0; k < s.n; ++k) m += pa[(o * s.n + k) * s.inner + i];
            m /= static_cast<double>(s.n);
            for (int64_t k = 0; k < s.n; ++k) {
                double c = pa[(o * s.n + k) * s.inner + i] - m;
                q += c * c;
            }
            means.data()[o * s.inner + i] = static_cast<float>(m);
            out.data()[o * s.inner + i] = static_cast<float>(q / denom);
        }
    // A 0-d input, unbiased (denominator 0): PyTorch 1.13 gives g * 2 / 0 (+-inf, NaN
    // for g = 0) rather than g * 2 * 0 / 0 = NaN; the forward is NaN either way.
    const bool scalar_no_dof = a.dim() == 0 && denom == 0.0f;
    record("var", loc, {a}, out,
           [ac, means, s, denom, scalar_no_dof](const Tensor& g, std::span<GradSlot> gi) {
               for (int64_t o = 0; o < s.outer; ++o)
                   for (int64_t k = 0; k < s.n; ++k)
                       for (int64_t i = 0; i < s.inner; ++i) {
                           int64_t j = (o * s.n + k) * s.inner + i, r = o * s.inner + i;
                           float c = scalar_no_dof ? 1.0f : ac.data()[j] - means.data()[r];
                           gi[0].store(j, g.data()[r] * 2.0f * c / denom);
                       }
           });
    return out;
}

// max: out = max_k a[k]; the gradient goes to the first index holding the max.
Tensor max(const Tensor& a, int64_t dim, bool keepdim, Loc loc) {
    int64_t d = wrap_dim(dim, a.dim(), "max", loc);
    if (reduced_size(a, d) == 0)
        fail("max", loc, fmt::format("reducing an empty dim {} of {}", d, shape_str(a.shape())));
    Tensor ac = contig(a);
    Around s = split(a, d, keepdim);
    Tensor out = Tensor::empty(s.out_shape);
    std::vector<int64_t> arg(static_cast<size_t>(s.outer * s.inner));
    for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < s.inner; ++i) {
            int64_t best = 0;
            float bv = ac.data()[o * s.n * s.inner + i];
            for (int64_t k = 1; k < s.n; ++k) {
                float v = ac.data()[(o * s.n + k) * s.inner + i];
                if (v > bv || std::isnan(v)) {
                    bv = v;
                    best = k;
                    if (std::isnan(v)) break;
                }
            }
            out.data()[o * s.inner + i] = bv;
            arg[o * s.inner + i] = best;
        }
    record("max", loc, {a}, out, [arg, s](const Tensor& g, std::span<GradSlot> gi) {
        for (int64_t o = 0; o < s.outer; ++o)
            for (int64_t k = 0; k < s.n; ++k)
                for (int64_t i = 0; i < s.inner; ++i) {
                    int64_t r = o * s.inner + i;
                    gi[0].store((o * s.n + k) * s.inner + i, arg[r] == k ? g.data()[r] : 0.0f);
                }
    });
    return out;
}

}  // namespace tg
