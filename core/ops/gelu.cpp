// GELU, tanh approximation, as the book's GELU module writes it:
//   u = sqrt(2/pi) (x + 0.044715 x^3),  y = 0.5 x (1 + tanh u)
//   dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
// Fused: the composition would put eight [N, F] tensors on the tape per block.
#include <cmath>
#include <numbers>

#include "core/ops.h"
#include "core/ops/broadcast.h"

namespace tg {

static const float kGeluC = static_cast<float>(std::sqrt(2.0 / std::numbers::pi));

Tensor gelu(const Tensor& x, Loc loc) {
    Tensor xc = x.is_contiguous() ? x : x.clone();
    Tensor out = Tensor::empty(x.shape());
    const float* px = xc.data();
    float* po = out.data();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) {
        float v = px[i];
        po[i] = 0.5f * v * (1.0f + std::tanh(kGeluC * (v + 0.044715f * v * v * v)));
    }
    if (!needs_record({&x})) return out;
    record("gelu", loc, {x}, out, [xc](const Tensor& g, std::span<GradSlot> gi) {
        const float *px = xc.data(), *pg = g.data();
        for (int64_t i = 0, n = xc.numel(); i < n; ++i) {
            float v = px[i];
            float t = std::tanh(kGeluC * (v + 0.044715f * v * v * v));
            float d = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * kGeluC * (1.0f + 3.0f * 0.044715f * v * v);
            gi[0].store(i, pg[i] * d);
        }
    });
    return out;
}

}  // namespace tg
