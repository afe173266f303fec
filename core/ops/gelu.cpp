// GELU, tanh approximation, as the book's GELU module writes it:
//   u = sqrt(2/pi) (x + 0.044715 x^3),  y = 0.5 x (1 + tanh u)
//   dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
// Fused: the composition would put eight [N, F] tensors on the tape per block.
// tanh u = (e - 1) / (e + 1) with e = exp(2u) for |u| >= 1/16 (glibc's expf costs
// a quarter of tanhf; e - 1 >= 0.13 keeps cancellation to a few ulp), and the odd
// series u - u^3/3 + 2u^5/15 - 17u^7/315 below (truncation ~1e-12 relative);
// |u| is clamped at 10, where tanh is 1 in float. With memory saving on
// (core/memory.h) backward recomputes tanh u from the saved input, by the same
// function on the same float, so the same bits; with it off the forward keeps
// tanh u, an [N, F] tensor. The output y leaves a recipe (core/memory.h): a
// caller that frees it (recompute_in_backward) gets it back in backward from the
// saved input by the same expression.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/memory.h"
#include "core/ops.h"
#include "core/ops/broadcast.h"
#include "core/parallel.h"

namespace tg {

static const float kGeluC = static_cast<float>(std::sqrt(2.0 / std::numbers::pi));

static inline float fast_tanh(float u) {
    if (std::fabs(u) < 0.0625f) {
        float u2 = u * u;
        return u * (1.0f + u2 * (-1.0f / 3.0f + u2 * (2.0f / 15.0f + u2 * (-17.0f / 315.0f))));
    }
    u = std::clamp(u, -10.0f, 10.0f);
    float e = std::exp(2.0f * u);
    return (e - 1.0f) / (e + 1.0f);
}

// tanh u of the input v; forward and the recomputing backward share this one expression.
static inline float gelu_tanh(float v) { return fast_tanh(kGeluC * (v + 0.044715f * v * v * v)); }

// y from the input v and its tanh u; forward and the recipe share this expression.
static inline float gelu_out(float v, float t) { return 0.5f * v * (1.0f + t); }

Tensor gelu(const Tensor& x, Loc loc) {
    Tensor xc = x.is_contiguous() ? x : x.clone();
    Tensor out = Tensor::empty(x.shape());
    const bool rec = needs_record({&x}), keep = rec && !memory_saving();
    Tensor th = keep ? Tensor::empty(x.shape()) : Tensor();
    const float* px = xc.data();
    float* po = out.data();
    float* pt = keep ? th.data() : nullptr;
    parallel_for(x.numel(), kElementGrain / 8, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            float v = px[i];
            float t = gelu_tanh(v);
            if (pt) pt[i] = t;
            po[i] = gelu_out(v, t);
        }
    });
    if (!rec) {
        record("gelu", loc, {x}, out, nullptr);
        return out;
    }
    record("gelu", loc, {x}, out, [xc, th](const Tensor& g, std::span<GradSlot> gi) {
        const float *px = xc.data(), *pg = g.data(), *pt = th.defined() ? th.data() : nullptr;
        parallel_for(xc.numel(), pt ? kElementGrain : kElementGrain / 8, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) {
                float v = px[i];
                float t = pt ? pt[i] : gelu_tanh(v);
                float d = 0.5f * (1.0f + t) +
                          0.5f * v * (1.0f - t * t) * kGeluC * (1.0f + 3.0f * 0.044715f * v * v);
                gi[0].store(i, pg[i] * d);
            }
        });
    });
    detail::set_recipe(out, xc, [n = xc.numel()](const float* px, float* dst) {
        parallel_for(n, kElementGrain / 8, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) dst[i] = gelu_out(px[i], gelu_tanh(px[i]));
        });
    });
    return out;
}

}  // namespace tg
