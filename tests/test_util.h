// Helpers shared by the tests.
#pragma once

#include <string>

#include "core/tapegrad.h"

namespace tg::test {

// A leaf tensor of uniform values in [lo, hi), requires_grad.
inline Tensor leaf(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
    Generator g(seed);
    Tensor t = Tensor::empty(shape);
    g.fill_uniform(t.data(), t.numel(), lo, hi);
    t.requires_grad_();
    return t;
}

inline std::string source_path(const std::string& rel) {
    return std::string(TAPEGRAD_SOURCE_DIR) + "/" + rel;
}

}  // namespace tg::test
