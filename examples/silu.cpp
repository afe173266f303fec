#include "examples/silu.h"

#include <cmath>

namespace tg::examples {

Tensor silu(const Tensor& x, Loc loc) {
    Tensor xc = x.is_contiguous() ? x : x.clone();  // a strided input: one gather
    Tensor out = Tensor::empty(x.shape());
    for (int64_t i = 0, n = x.numel(); i < n; ++i) {
        float v = xc.data()[i];
        out.data()[i] = v / (1.0f + std::exp(-v));
    }
    // The backward, right under the forward it inverts. gi[0] is the gradient slot
    // of input 0: store() assigns on the first contribution and adds after.
    record("silu", loc, {x}, out, [xc](const Tensor& g, std::span<GradSlot> gi) {
        for (int64_t i = 0, n = xc.numel(); i < n; ++i) {
            float v = xc.data()[i];
            float s = 1.0f / (1.0f + std::exp(-v));
            gi[0].store(i, g.data()[i] * s * (1.0f + v * (1.0f - s)));
        }
    });
    return out;
}

}  // namespace tg::examples
