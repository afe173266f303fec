#include "optim/schedule.h"

#include <cmath>
#include <numbers>

#include "core/parallel.h"
#include "optim/optimizer.h"

namespace tg::optim {

// Blocked as the optimizers' fused pass (optimizer.h), so clip_grad_norm and
// last_grad_norm() report the same figure to the bit.
double grad_norm(const std::vector<Tensor>& params) {
    std::vector<const float*> g(params.size(), nullptr);
    std::vector<int64_t> numels;
    std::vector<Tensor> grads;
    for (size_t i = 0; i < params.size(); ++i) {
        grads.push_back(params[i].grad());
        if (grads.back().defined()) g[i] = grads.back().data();
        numels.push_back(params[i].numel());
    }
    std::vector<ParamBlock> blocks = param_blocks(numels);
    std::vector<double> sq(blocks.size(), 0.0);
    parallel_for(static_cast<int64_t>(blocks.size()), 1, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b)
            if (const float* x = g[blocks[b].tensor])
                sq[b] = sum_squares(x + blocks[b].begin, blocks[b].end - blocks[b].begin);
    });
    double total = 0;
    for (double s : sq) total += s;
    return std::sqrt(total);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
    double total = grad_norm(params);
    float coef = static_cast<float>(std::min(1.0, max_norm / (total + 1e-6)));
    if (coef < 1.0f)
        for (const Tensor& p : params) {
            Tensor g = p.grad();
            if (!g.defined()) continue;
            for (int64_t i = 0, n = g.numel(); i < n; ++i) g.data()[i] *= coef;
        }
    return total;
}

double WarmupCosine::operator()(int64_t step) const {
    if (warmup_steps > 0 && step < warmup_steps)
        return initial_lr +
               static_cast<double>(step) * (peak_lr - initial_lr) / static_cast<double>(warmup_steps);
    double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
    double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
    return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace tg::optim
