// Elementwise ops with NumPy broadcasting. Inputs may be any strided view; the
// output is contiguous. add, mul, neg, exp, log, tanh, pow, the scalar forms,
// then sub, div and sqrt, each with its own backward.
#include <fmt/format.h>

#include <cmath>

#include "core/ops.h"
#include "core/ops/broadcast.h"

namespace tg {
namespace {

// out = f(a, b) over the broadcast shape.
template <class F>
Tensor binary_forward(const Tensor& a, const Tensor& b, const char* op, const Loc& loc, F f) {
    if (!a.defined() || !b.defined()) fail(op, loc, "undefined operand");
    Shape os = broadcast_shapes(a.shape(), b.shape(), op, loc);
    Tensor out = Tensor::empty(os);
    Shape cs = contiguous_strides(os);
    Shape as = broadcast_strides(a.shape(), a.strides(), os);
    Shape bs = broadcast_strides(b.shape(), b.strides(), os);
    const float *pa = a.data(), *pb = b.data();
    float* po = out.data();
    parallel_strided_apply<3>(os, {cs.data(), as.data(), bs.data()}, [&](auto off, int64_t n, auto in) {
        const float* x = pa + off[1];
        const float* y = pb + off[2];
        float* o = po + off[0];
        if (in[1] == 1 && in[2] == 1)
            for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
        else
            for (int64_t i = 0; i < n; ++i) o[i] = f(x[i * in[1]], y[i * in[2]]);
    });
    return out;
}

// Gradient of one operand of a binary op: d = g * h(self, other) over the output
// shape, then summed back to the operand's shape (reduce_to_shape).
template <class H>
void binary_grad(const Tensor& g, const Tensor& self, const Tensor& other, const GradSlot& slot, H h) {
    const Shape& os = g.shape();
    Shape cs = contiguous_strides(os);
    Shape ss = broadcast_strides(self.shape(), self.strides(), os);
    Shape ts = broadcast_strides(other.shape(), other.strides(), os);
    bool same = self.shape() == os;
    Tensor full = same ? Tensor() : Tensor::empty(os);
    const float *pg = g.data(), *ps = self.data(), *pt = other.data();
    parallel_strided_apply<3>(os, {cs.data(), ss.data(), ts.data()}, [&](auto off, int64_t n, auto in) {
        for (int64_t i = 0; i < n; ++i) {
            float v = pg[off[0] + i] * h(ps[off[1] + i * in[1]], pt[off[2] + i * in[2]]);
            if (same)
                slot.store(off[0] + i, v);
            else
                full.data()[off[0] + i] = v;
        }
    });
    if (!same) reduce_to_shape(full.data(), os, slot);
}

// out = f(a), contiguous.
template <class F>
Tensor unary_forward(const Tensor& a, const char* op, const Loc& loc, F f) {
    if (!a.defined()) fail(op, loc, "undefined operand");
    Tensor out = Tensor::empty(a.shape());
    Shape cs = contiguous_strides(a.shape());
    const float* pa = a.data();
    float* po = out.data();
    parallel_strided_apply<2>(a.shape(), {cs.data(), a.strides().data()}, [&](auto off, int64_t n, auto in) {
        for (int64_t i = 0; i < n; ++i) po[off[0] + i] = f(pa[off[1] + i * in[1]]);
    });
    return out;
}

// out = f(a); backward: g * c, for a constant derivative c (add/sub/mul/div by a
// scalar, neg). Nothing of a or out is saved: the scaled attention scores need
// not outlive the softmax that reads them (core/memory.h).
template <class F>
Tensor unary_const_grad(const Tensor& a, const char* op, const Loc& loc, F f, float c) {
    Tensor out = unary_forward(a, op, loc, f);
    record(op, loc, {a}, out, [c](const Tensor& g, std::span<GradSlot> gi) {
        const float* pg = g.data();
        parallel_for(g.numel(), kElementGrain, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) gi[0].store(i, pg[i] * c);
        });
    });
    return out;
}

// out = f(a); backward: g * df(a, out).
template <class F, class DF>
Tensor unary(const Tensor& a, const char* op, const Loc& loc, F f, DF df) {
    Tensor out = unary_forward(a, op, loc, f);
    record(op, loc, {a}, out, [a, out, df](const Tensor& g, std::span<GradSlot> gi) {
        Shape cs = contiguous_strides(a.shape());
        const float *pa = a.data(), *po = out.data(), *pg = g.data();
        parallel_strided_apply<2>(a.shape(), {cs.data(), a.strides().data()},
                                  [&](auto off, int64_t n, auto in) {
                                      for (int64_t i = 0; i < n; ++i) {
                                          int64_t j = off[0] + i;
                                          gi[0].store(j, pg[j] * df(pa[off[1] + i * in[1]], po[j]));
                                      }
                                  });
    });
    return out;
}

}  // namespace

// add: out = a + b.  da = reduce(g), db = reduce(g).
Tensor add(const Tensor& a, const Tensor& b, Loc loc) {
    Tensor out = binary_forward(a, b, "add", loc, [](float x, float y) { return x + y; });
    record("add", loc, {a, b}, out, [](const Tensor& g, std::span<GradSlot> gi) {  // no values: shapes in gi
        if (gi[0]) reduce_to_shape(g.data(), g.shape(), gi[0]);
        if (gi[1]) reduce_to_shape(g.data(), g.shape(), gi[1]);
    });
    return out;
}

// mul: out = a * b.  da = reduce(g * b), db = reduce(g * a).
Tensor mul(const Tensor& a, const Tensor& b, Loc loc) {
    Tensor out = binary_forward(a, b, "mul", loc, [](float x, float y) { return x * y; });
    record("mul", loc, {a, b}, out, [a, b](const Tensor& g, std::span<GradSlot> gi) {
        auto other = [](float, float o) { return o; };
        if (gi[0]) binary_grad(g, a, b, gi[0], other);
        if (gi[1]) binary_grad(g, b, a, gi[1], other);
    });
    return out;
}

// neg: out = -a.  da = -g.
Tensor neg(const Tensor& a, Loc loc) {
    return unary_const_grad(
        a, "neg", loc, [](float x) { return -x; }, -1.0f);
}

// exp: out = e^a.  da = g * out.
Tensor exp(const Tensor& a, Loc loc) {
    return unary(
        a, "exp", loc, [](float x) { return std::exp(x); }, [](float, float y) { return y; });
}

// log: out = ln a.  da = g / a.
Tensor log(const Tensor& a, Loc loc) {
    return unary(
        a, "log", loc, [](float x) { return std::log(x); }, [](float x, float) { return 1.0f / x; });
}

// tanh: out = tanh a.  da = g * (1 - out^2).
Tensor tanh(const Tensor& a, Loc loc) {
    return unary(
        a, "tanh", loc, [](float x) { return std::tanh(x); }, [](float, float y) { return 1.0f - y * y; });
}

// pow: out = a^p.  da = g * p * a^(p-1); for p = 0, da = 0 (a constant, as
// PyTorch), not 0 * 0^-1 = NaN at a = 0.
Tensor pow(const Tensor& a, float p, Loc loc) {
    return unary(
        a, "pow", loc, [p](float x) { return std::pow(x, p); },
        [p](float x, float) { return p == 0.0f ? 0.0f : p * std::pow(x, p - 1.0f); });
}

// add_scalar: out = a + s.  da = g.
Tensor add(const Tensor& a, float s, Loc loc) {
    return unary_const_grad(
        a, "add_scalar", loc, [s](float x) { return x + s; }, 1.0f);
}

// mul_scalar: out = a * s.  da = g * s.
Tensor mul(const Tensor& a, float s, Loc loc) {
    return unary_const_grad(
        a, "mul_scalar", loc, [s](float x) { return x * s; }, s);
}

// div_scalar: out = a / s.  da = g / s.  A primitive rather than a * (1/s): the
// attention scale 1/sqrt(HS) is inexact for most HS, and PyTorch divides.
Tensor div(const Tensor& a, float s, Loc loc) {
    return unary_const_grad(
        a, "div_scalar", loc, [s](float x) { return x / s; }, 1.0f / s);
}

// The common composites are ops of their own, so tape dumps, profiles and
// anomaly messages name them ("sub", not "add" of a "neg"), and they round as
// PyTorch does (a / b once, not a * b^-1).

// sub: out = a - b.  da = reduce(g), db = reduce(-g).
Tensor sub(const Tensor& a, const Tensor& b, Loc loc) {
    Tensor out = binary_forward(a, b, "sub", loc, [](float x, float y) { return x - y; });
    record("sub", loc, {a, b}, out, [a, b](const Tensor& g, std::span<GradSlot> gi) {
        if (gi[0]) reduce_to_shape(g.data(), g.shape(), gi[0]);
        if (gi[1]) binary_grad(g, b, a, gi[1], [](float, float) { return -1.0f; });
    });
    return out;
}

// div: out = a / b.  da = reduce(g / b), db = reduce(-g a / b^2).
Tensor div(const Tensor& a, const Tensor& b, Loc loc) {
    Tensor out = binary_forward(a, b, "div", loc, [](float x, float y) { return x / y; });
    record("div", loc, {a, b}, out, [a, b](const Tensor& g, std::span<GradSlot> gi) {
        if (gi[0]) binary_grad(g, a, b, gi[0], [](float, float y) { return 1.0f / y; });
        if (gi[1]) binary_grad(g, b, a, gi[1], [](float y, float x) { return -x / (y * y); });
    });
    return out;
}

// sub_scalar: out = a - s.  da = g.
Tensor sub(const Tensor& a, float s, Loc loc) {
    return unary_const_grad(
        a, "sub_scalar", loc, [s](float x) { return x - s; }, 1.0f);
}

// sqrt: out = a^(1/2).  da = g / (2 out).
Tensor sqrt(const Tensor& a, Loc loc) {
    return unary(
        a, "sqrt", loc, [](float x) { return std::sqrt(x); }, [](float, float y) { return 0.5f / y; });
}

}  // namespace tg
