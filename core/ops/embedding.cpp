// embedding: out[s, :] = W[ids[s], :]       W [V, C], ids of shape S, out [S..., C]
//   dW[v, :] = sum over s with ids[s] == v of g[s, :]   (repeated ids accumulate)
#include <fmt/format.h>

#include <algorithm>

#include "core/ops.h"

namespace tg {

Tensor embedding(const Tensor& weight, const Ids& ids, Loc loc) {
    if (weight.dim() != 2) fail("embedding", loc, "weight must be [V, C], got " + shape_str(weight.shape()));
    if (ids.numel() != numel_of(ids.shape))
        fail("embedding", loc, fmt::format("{} ids for id shape {}", ids.numel(), shape_str(ids.shape)));
    int64_t V = weight.shape()[0], C = weight.shape()[1];
    for (int64_t i = 0; i < ids.numel(); ++i)
        if (ids.data[i] < 0 || ids.data[i] >= V)
            fail("embedding", loc,
                 fmt::format("id {} at position {} is outside the table [0, {})", ids.data[i], i, V));
    Tensor wc = weight.is_contiguous() ? weight : weight.clone();
    Shape os = ids.shape;
    os.push_back(C);
    Tensor out = Tensor::empty(os);
    for (int64_t i = 0; i < ids.numel(); ++i) std::copy_n(wc.data() + ids.data[i] * C, C, out.data() + i * C);
    if (!needs_record({&weight})) return out;
    record("embedding", loc, {weight}, out, [ids, V, C](const Tensor& g, std::span<GradSlot> gi) {
        if (!gi[0].accumulate) std::fill_n(gi[0].data, V * C, 0.0f);
        for (int64_t i = 0; i < ids.numel(); ++i) {
            float* dst = gi[0].data + ids.data[i] * C;
            const float* src = g.data() + i * C;
            for (int64_t j = 0; j < C; ++j) dst[j] += src[j];
        }
    });
    return out;
}

}  // namespace tg
