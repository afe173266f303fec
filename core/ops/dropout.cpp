// dropout (inverted), as PyTorch computes it:
//   noise = bernoulli(1 - p) / (1 - p),  y = a * noise,  da = g * noise
// In eval mode, or with p == 0, the input itself is returned (no tape entry).
// What backward keeps: with memory saving on (core/memory.h) the drawn mask as
// bits, one per element, and noise = bit ? 1/keep : 0 is re-derived in backward
// (the same float the forward used, so the same products); otherwise the noise
// tensor, a float per element.
#include <fmt/format.h>

#include <memory>

#include "core/memory.h"
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

// The same product from a 0/1 mask kept as bits: bit i of word i / 64 is
// mask[i] != 0, and noise_i = bit ? 1/keep : 0 as apply_noise computes it.
//   y_i = a_i * noise_i,   da_i = g_i * noise_i
// Words are split over threads whole, so no two threads write one word. The
// output's recipe (core/memory.h) recomputes y from a and the bits.
inline float masked(float a, bool on, float inv) { return a * (on ? inv : 0.0f); }

Tensor apply_mask_bits(const Tensor& a, const float* mask, float p, const Loc& loc) {
    Tensor ac = a.is_contiguous() ? a : a.clone();
    Tensor out = Tensor::empty(a.shape());
    const int64_t n = a.numel(), words = (n + 63) / 64;
    const float keep = static_cast<float>(1.0 - static_cast<double>(p));
    const float inv = 1.0f / keep;
    bool rec = needs_record({&a});
    auto bits = rec ? std::make_shared<std::vector<uint64_t>>(static_cast<size_t>(words)) : nullptr;
    const float* pa = ac.data();
    float* po = out.data();
    uint64_t* pb = bits ? bits->data() : nullptr;
    parallel_for(words, kElementGrain / 64, [&](int64_t w0, int64_t w1) {
        for (int64_t w = w0; w < w1; ++w) {
            uint64_t word = 0;
            for (int64_t i = w * 64, e = std::min(n, i + 64); i < e; ++i) {
                bool on = mask[i] != 0.0f;
                word |= static_cast<uint64_t>(on) << (i - w * 64);
                po[i] = masked(pa[i], on, inv);
            }
            if (pb) pb[w] = word;
        }
    });
    if (!rec) return out;
    record("dropout", loc, {a}, out, [bits, n, inv](const Tensor& g, std::span<GradSlot> gi) {
        const float* pg = g.data();
        const uint64_t* pb = bits->data();
        parallel_for((n + 63) / 64, kElementGrain / 64, [&](int64_t w0, int64_t w1) {
            for (int64_t w = w0; w < w1; ++w)
                for (int64_t i = w * 64, e = std::min(n, i + 64); i < e; ++i)
                    gi[0].store(i, pg[i] * (((pb[w] >> (i - w * 64)) & 1) ? inv : 0.0f));
        });
    });
    detail::set_recipe(out, ac, [bits, n, inv](const float* pa, float* dst) {
        const uint64_t* pb = bits->data();
        parallel_for((n + 63) / 64, kElementGrain / 64, [&](int64_t w0, int64_t w1) {
            for (int64_t w = w0; w < w1; ++w)
                for (int64_t i = w * 64, e = std::min(n, i + 64); i < e; ++i)
                    dst[i] = masked(pa[i], (pb[w] >> (i - w * 64)) & 1, inv);
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

// The mask is drawn into the buffer that becomes the noise (saving off), or into
// a scratch buffer packed into bits (saving on; the scratch returns to the pool).
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
    if (memory_saving()) return apply_mask_bits(a, noise.data(), p, loc);  // fill_bernoulli draws 0 or 1
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
