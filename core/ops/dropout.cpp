// dropout (inverted), as PyTorch computes it:
//   noise = bernoulli(1 - p) / (1 - p),  y = a * noise,  da = g * noise
// In eval mode, or with p == 0, the input itself is returned (no tape entry).
// The noise tensor is kept for backward.
#include <fmt/format.h>

#include "core/ops.h"
#include "core/ops/broadcast.h"

namespace tg {

Tensor dropout_with_mask(const Tensor& a, const Tensor& mask, float p, Loc loc) {
    if (mask.shape() != a.shape())
        fail("dropout", loc, fmt::format("mask {} must have the input's shape {}", shape_str(mask.shape()),
                                         shape_str(a.shape())));
    if (!(p >= 0.0f && p < 1.0f)) fail("dropout", loc, fmt::format("p = {} is outside [0, 1)", p));
    Tensor ac = a.is_contiguous() ? a : a.clone();
    Tensor noise = Tensor::empty(a.shape());
    Tensor out = Tensor::empty(a.shape());
    float keep = static_cast<float>(1.0 - static_cast<double>(p));
    // mask / keep for a 0/1 mask is exactly 0 or 1/keep: one division, not one per element.
    const float inv = 1.0f / keep;
    const float *pm = mask.data(), *pa = ac.data();
    float *pn = noise.data(), *po = out.data();
    for (int64_t i = 0, n = a.numel(); i < n; ++i) {
        pn[i] = pm[i] != 0.0f ? (pm[i] == 1.0f ? inv : pm[i] / keep) : 0.0f;
        po[i] = pa[i] * pn[i];
    }
    if (!needs_record({&a})) return out;
    record("dropout", loc, {a}, out, [noise](const Tensor& g, std::span<GradSlot> gi) {
        for (int64_t i = 0, n = noise.numel(); i < n; ++i) gi[0].store(i, g.data()[i] * noise.data()[i]);
    });
    return out;
}

Tensor dropout(const Tensor& a, float p, bool training, Generator& gen, Loc loc) {
    if (!training || p == 0.0f) return a;
    if (!(p > 0.0f && p < 1.0f)) fail("dropout", loc, fmt::format("p = {} is outside [0, 1)", p));
    Tensor mask = Tensor::empty(a.shape());
    gen.fill_bernoulli(mask.data(), mask.numel(), 1.0 - static_cast<double>(p));
    return dropout_with_mask(a, mask, p, loc);
}

}  // namespace tg
