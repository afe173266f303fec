// A new op written outside tapegrad's tree: squared ReLU (So et al., Primer).
//   y = max(x, 0)^2          x, y [any shape]
//   dy/dx = 2 max(x, 0)
#pragma once

#include <tapegrad/core/tapegrad.h>

namespace downstream {

tg::Tensor relu2(const tg::Tensor& x, tg::Loc loc = tg::Loc::current());

}  // namespace downstream
