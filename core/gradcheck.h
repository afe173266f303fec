// gradcheck: compare an op's backward with finite differences.
//
// L = sum(fn(inputs) * R) for a fixed random R. The numeric derivative of L by
// each input element is the fourth-order central difference
//   (8 (L(x+h) - L(x-h)) - (L(x+2h) - L(x-2h))) / (12 h)
// with L summed in double, whose truncation error is O(h^4): with h = 1e-2 and
// inputs of order one it sits near float32 rounding (~1e-5), far below the
// tolerance, so an error of 1% in a single gradient element is caught
// (tests/test_gradcheck.cpp proves it with a deliberately wrong backward).
//
// Backward is run twice: once into fresh gradient buffers filled with NaN (an
// element the op forgets to write shows), once onto gradients pre-set to known
// values (an op that overwrites instead of adding shows).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tg {

struct GradcheckOptions {
    double h = 1e-2;
    double atol = 1e-5;
    double rtol = 1e-3;
    uint64_t seed = 1234;
};

struct GradcheckResult {
    bool ok = true;
    std::string report;       // the worst element: input, index, analytic, numeric
    double worst_excess = 0;  // max of |a - n| - (atol + rtol |n|)
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Every input must be a leaf with requires_grad; their values are perturbed in
// place and restored.
GradcheckResult gradcheck(const GradcheckFn& fn, std::vector<Tensor> inputs, GradcheckOptions opt = {});

}  // namespace tg
