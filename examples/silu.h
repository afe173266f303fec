// Worked example of a new op (docs/extending.md): SiLU, y = x * sigmoid(x).
#pragma once

#include "core/tapegrad.h"

namespace tg::examples {

// y = x s, s = 1 / (1 + e^-x)      x, y [any shape]
// dy/dx = s + x s (1 - s) = s (1 + x (1 - s))
Tensor silu(const Tensor& x, Loc loc = Loc::current());

}  // namespace tg::examples
