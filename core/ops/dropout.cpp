// dropout (inverted), as PyTorch computes it:
//   noise = bernoulli(1 - p) / (1 - p),  y = a * noise,  da = g * noise
// In eval mode, or with p == 0, the input itself is returned (no tape entry).
// The noise tensor (the only per-call buffer besides the output) is kept for backward.
#include <fmt/format.h>

#include "core/ops.h"
#include "core/ops/broadcast.h"
#include "core/parallel.h"

namespace tg {

namespace {

DropoutRows g_rows;  // set by the data-parallel trainer (core/ops.h)

// out = a * noise, where noise holds a 0/1 mask on entry and mask / keep on exit:
// mask / keep for a 0/1 mask is exactly 0 or 1/keep (one division, not one per
// element); any other mask value is divided as PyTorch would.
Tensor apply_noise(const Tensor& a, Tensor noise, float p, const Loc& loc) {
    Tensor ac = a.is_contiguous() ? a : a.clone();
    Tensor out = Tensor::empty(a.shape());
    const float keep = static_cast<float>(1.0 - static_cast<double>(p));
    const float inv = 1.0f / keep;
    const float* pa = ac.data();
    float *pn = noise.data(), *po = out.data();
    parallel_for(a.numel(), kElementGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            pn[i] = pn[i] != 0.0f ? (pn[i] == 1.0f ? inv : pn[i] / keep) : 0.0f;
            po[i] = pa[i] * pn[i];
        }
    });
    if (!needs_record({&a})) return out;
    record("dropout", loc, {a}, out, [noise](const Tensor& g, std::span<GradSlot> gi) {
        const float *pg = g.data(), *pn = noise.data();
        parallel_for(noise.numel(), kElementGrain, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) gi[0].store(i, pg[i] * pn[i]);
        });
    });
    return out;
}

}  // namespace

Tensor dropout_with_mask(const Tensor& a, const Tensor& mask, float p, Loc loc) {
    if (mask.shape() != a.shape())
        fail("dropout", loc,
             fmt::format("mask {} must have the input's shape {}", shape_str(mask.shape()),
                         shape_str(a.shape())));
    if (!(p >= 0.0f && p < 1.0f)) fail("dropout", loc, fmt::format("p = {} is outside [0, 1)", p));
    return apply_noise(a, mask.clone(), p, loc);
}

void set_dropout_rows(DropoutRows r) { g_rows = r; }
DropoutRows dropout_rows() { return g_rows; }

// The mask is drawn straight into the buffer that becomes the noise: no separate
// mask tensor.
Tensor dropout(const Tensor& a, float p, bool training, DropoutSplit split, Generator& gen, Loc loc) {
    if (!training || p == 0.0f) return a;
    if (!(p > 0.0f && p < 1.0f)) fail("dropout", loc, fmt::format("p = {} is outside [0, 1)", p));
    const DropoutRows& r = g_rows;
    const bool row_split = r.total > 0 && split == DropoutSplit::rows;
    if (row_split && (a.dim() == 0 || a.shape()[0] != r.rows))
        fail("dropout", loc,
             fmt::format("the input {} is declared row-split (DropoutSplit::rows), so its dim 0 must be this "
                         "rank's {} rows [{}, {}) of the global batch of {}",
                         shape_str(a.shape()), r.rows, r.begin, r.begin + r.rows, r.total));
    Tensor noise = Tensor::empty(a.shape());
    const double keep = 1.0 - static_cast<double>(p);
    if (row_split) {  // this rank's rows of the global draw
        const int64_t row = a.numel() / r.rows;
        gen.skip_bernoulli(r.begin * row);
        gen.fill_bernoulli(noise.data(), noise.numel(), keep);
        gen.skip_bernoulli((r.total - r.begin - r.rows) * row);
    } else {
        gen.fill_bernoulli(noise.data(), noise.numel(), keep);
    }
    return apply_noise(a, noise, p, loc);
}

Tensor dropout(const Tensor& a, float p, bool training, Generator& gen, Loc loc) {
    if (training && p != 0.0f && g_rows.total > 0)
        fail("dropout", loc,
             fmt::format("input {} under a data-parallel row split (rows [{}, {}) of {}): say whether it is "
                         "split by batch rows, dropout(..., DropoutSplit::rows | none)",
                         shape_str(a.shape()), g_rows.begin, g_rows.begin + g_rows.rows, g_rows.total));
    return dropout(a, p, training, DropoutSplit::none, gen, loc);
}

}  // namespace tg
