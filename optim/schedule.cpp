#include "optim/schedule.h"

#include <cmath>
#include <numbers>

namespace tg::optim {

double grad_norm(const std::vector<Tensor>& params) {
    double total = 0;
    for (const Tensor& p : params) {
        Tensor g = p.grad();
        if (!g.defined()) continue;
        double s = 0;
        for (int64_t i = 0, n = g.numel(); i < n; ++i) s += static_cast<double>(g.data()[i]) * g.data()[i];
        total += s;
    }
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
        return initial_lr + static_cast<double>(step) * (peak_lr - initial_lr) / static_cast<double>(warmup_steps);
    double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
    double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
    return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace tg::optim
