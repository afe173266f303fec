// masked_fill: y = mask != 0 ? value : a   (mask broadcasts to a; no gradient to mask)
//   da = mask != 0 ? 0 : g
// The causal mask of attention is masked_fill(scores, triu(ones(T, T), 1), -inf):
// an infinite `value` is the op's documented output, so anomaly mode accepts it.
#include <fmt/format.h>

#include <cmath>

#include "core/ops.h"
#include "core/ops/broadcast.h"

namespace tg {

Tensor masked_fill(const Tensor& a, const Tensor& mask, float value, Loc loc) {
    Shape os = broadcast_shapes(a.shape(), mask.shape(), "masked_fill", loc);
    if (os != a.shape())
        fail("masked_fill", loc,
             fmt::format("mask {} must broadcast to the input {}, not grow it", shape_str(mask.shape()),
                         shape_str(a.shape())));
    Tensor out = Tensor::empty(os);
    Shape cs = contiguous_strides(os);
    Shape ms = broadcast_strides(mask.shape(), mask.strides(), os);
    const float *pa = a.data(), *pm = mask.data();
    float* po = out.data();
    parallel_strided_apply<3>(
        os, {cs.data(), a.strides().data(), ms.data()}, [&](auto off, int64_t n, auto in) {
            for (int64_t i = 0; i < n; ++i)
                po[off[0] + i] = pm[off[2] + i * in[2]] != 0.0f ? value : pa[off[1] + i * in[1]];
        });
    if (!needs_record({&a})) return out;
    record(
        "masked_fill", loc, {a}, out,
        [mask, os](const Tensor& g, std::span<GradSlot> gi) {
            Shape cs = contiguous_strides(os);
            Shape ms = broadcast_strides(mask.shape(), mask.strides(), os);
            const float* pm = mask.data();
            parallel_strided_apply<2>(os, {cs.data(), ms.data()}, [&](auto off, int64_t n, auto in) {
                for (int64_t i = 0; i < n; ++i)
                    gi[0].store(off[0] + i, pm[off[1] + i * in[1]] != 0.0f ? 0.0f : g.data()[off[0] + i]);
            });
        },
        /*documented_inf=*/std::isinf(value));
    return out;
}

}  // namespace tg
