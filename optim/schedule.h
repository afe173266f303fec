// Gradient clipping and the learning-rate schedule of the book's appendix D.
#pragma once

#include <vector>

#include "core/tapegrad.h"

namespace tg::optim {

// torch.nn.utils.clip_grad_norm_: total = sqrt(sum over params of ||g||^2);
// every gradient is scaled by min(1, max_norm / (total + 1e-6)). Returns total.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);
// The same norm without clipping (for metrics).
double grad_norm(const std::vector<Tensor>& params);

// Linear warmup from initial_lr to peak_lr over warmup_steps, then cosine decay
// to min_lr at total_steps:
//   step < warmup:  lr = initial + step * (peak - initial) / warmup
//   else:           p = (step - warmup) / (total - warmup)
//                   lr = min + (peak - min) * 0.5 * (1 + cos(pi p))
struct WarmupCosine {
    double peak_lr = 4e-4, initial_lr = 0, min_lr = 0;
    int64_t warmup_steps = 0, total_steps = 1;
    double operator()(int64_t step) const;
};

}  // namespace tg::optim
