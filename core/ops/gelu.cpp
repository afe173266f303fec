// GELU, tanh approximation, as the book's GELU module writes it:
//   u = sqrt(2/pi) (x + 0.044715 x^3),  y = 0.5 x (1 + tanh u)
//   dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
// Fused: the composition would put eight [N, F] tensors on the tape per block.
// tanh is vm::tanh (core/vmath.h: <= 2.5 ulp over every float, branch-free, so
// the loops below vectorise). With memory saving on (core/memory.h) backward
// recomputes tanh u from the saved input, by the same function on the same
// float, so the same bits; with it off the forward keeps
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
#include "core/vmath.h"

namespace tg {

static const float kGeluC = static_cast<float>(std::sqrt(2.0 / std::numbers::pi));

// tanh u of the input v; forward and the recomputing backward share this one expression.
static inline float gelu_tanh(float v) { return vm::tanh(kGeluC * (v + 0.044715f * v * v * v)); }

// y from the input v and its tanh u; forward and the recipe share this expression.
static inline float gelu_out(float v, float t) { return 0.5f * v * (1.0f + t); }

// dy/dx from the input v and its tanh u (the header's formula).
static inline float gelu_grad(float v, float t) {
    return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * kGeluC * (1.0f + 3.0f * 0.044715f * v * v);
}

Tensor gelu(const Tensor& x, Loc loc) {
    Tensor xc = x.is_contiguous() ? x : x.clone();
    Tensor out = Tensor::empty(x.shape());
    const bool rec = needs_record({&x}), keep = rec && !memory_saving();
    Tensor th = keep ? Tensor::empty(x.shape()) : Tensor();
    const float* px = xc.data();
    float* po = out.data();
    float* pt = keep ? th.data() : nullptr;
    parallel_for(x.numel(), kElementGrain / 8, [&](int64_t b, int64_t e) {
        if (pt)  // two loops: a conditional store would keep the loop from vectorising
            for (int64_t i = b; i < e; ++i) {
                float t = gelu_tanh(px[i]);
                pt[i] = t;
                po[i] = gelu_out(px[i], t);
            }
        else
            for (int64_t i = b; i < e; ++i) po[i] = gelu_out(px[i], gelu_tanh(px[i]));
    });
    if (!rec) {
        record("gelu", loc, {x}, out, nullptr);
        return out;
    }
    record("gelu", loc, {x}, out, [xc, th](const Tensor& g, std::span<GradSlot> gi) {
        const float *px = xc.data(), *pg = g.data(), *pt = th.defined() ? th.data() : nullptr;
        parallel_for(xc.numel(), pt ? kElementGrain : kElementGrain / 8, [&](int64_t b, int64_t e) {
            float* d = gi[0].data;
            const bool acc = gi[0].accumulate;
            // One loop per case, each branch-free, so each vectorises.
            if (pt && acc)
                for (int64_t i = b; i < e; ++i) d[i] += pg[i] * gelu_grad(px[i], pt[i]);
            else if (pt)
                for (int64_t i = b; i < e; ++i) d[i] = pg[i] * gelu_grad(px[i], pt[i]);
            else if (acc)
                for (int64_t i = b; i < e; ++i) d[i] += pg[i] * gelu_grad(px[i], gelu_tanh(px[i]));
            else
                for (int64_t i = b; i < e; ++i) d[i] = pg[i] * gelu_grad(px[i], gelu_tanh(px[i]));
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
