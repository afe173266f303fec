// masked_fill: y = mask != 0 ? value : a   (a and mask broadcast, as PyTorch's
// out-of-place masked_fill; no gradient to mask)
//   da = reduce_to_shape(mask != 0 ? 0 : g)     (a summed back over the dims it grew in)
// The causal mask of attention is masked_fill(scores, triu(ones(T, T), 1), -inf):
// an infinite `value` is the op's documented output, so anomaly mode accepts it.
#include <cmath>

#include "core/ops.h"
#include "core/ops/broadcast.h"

namespace tg {

Tensor masked_fill(const Tensor& a, const Tensor& mask, float value, Loc loc) {
    if (!a.defined() || !mask.defined()) fail("masked_fill", loc, "undefined operand");
    Shape os = broadcast_shapes(a.shape(), mask.shape(), "masked_fill", loc);
    Tensor out = Tensor::empty(os);
    Shape cs = contiguous_strides(os);
    Shape as = broadcast_strides(a.shape(), a.strides(), os);
    Shape ms = broadcast_strides(mask.shape(), mask.strides(), os);
    const float *pa = a.data(), *pm = mask.data();
    float* po = out.data();
    parallel_strided_apply<3>(os, {cs.data(), as.data(), ms.data()}, [&](auto off, int64_t n, auto in) {
        for (int64_t i = 0; i < n; ++i)
            po[off[0] + i] = pm[off[2] + i * in[2]] != 0.0f ? value : pa[off[1] + i * in[1]];
    });
    if (!needs_record({&a})) return out;
    record(
        "masked_fill", loc, {a}, out,
        [mask, os](const Tensor& g, std::span<GradSlot> gi) {
            Shape cs = contiguous_strides(os);
            Shape ms = broadcast_strides(mask.shape(), mask.strides(), os);
            const bool same = *gi[0].shape == os;  // a did not grow: store straight into its slot
            Tensor full = same ? Tensor() : Tensor::empty(os);
            const float* pm = mask.data();
            parallel_strided_apply<2>(os, {cs.data(), ms.data()}, [&](auto off, int64_t n, auto in) {
                for (int64_t i = 0; i < n; ++i) {
                    float v = pm[off[1] + i * in[1]] != 0.0f ? 0.0f : g.data()[off[0] + i];
                    if (same)
                        gi[0].store(off[0] + i, v);
                    else
                        full.data()[off[0] + i] = v;
                }
            });
            if (!same) reduce_to_shape(full.data(), os, gi[0]);
        },
        /*documented_inf=*/std::isinf(value));
    return out;
}

}  // namespace tg
