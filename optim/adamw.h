// AdamW with PyTorch's exact semantics (torch.optim.AdamW, single-tensor path):
//   t += 1
//   p *= 1 - lr * wd                           (decoupled weight decay, first)
//   m = beta1 m + (1 - beta1) g
//   v = beta2 v + (1 - beta2) g^2
//   p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Scalars are formed in double as Python does, then applied in float32; one
// fused pass over p, g, m, v for all parameters (parallel over fixed blocks, so
// each element's arithmetic, and the result, is the same for any thread count).
#pragma once

#include "optim/optimizer.h"

namespace tg::optim {

struct AdamWOptions {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

class AdamW : public Optimizer {
public:
    AdamW(std::vector<ParamRef> params, AdamWOptions opt);
    void step() override;
    std::map<std::string, Tensor> state_tensors() const override;
    std::map<std::string, double> state_scalars() const override;
    void load_state(const std::map<std::string, Tensor>& tensors,
                    const std::map<std::string, double>& scalars) override;
    int64_t steps() const { return t_; }
    AdamWOptions options;

private:
    std::vector<Tensor> m_, v_;
    std::vector<ParamBlock> blocks_;
    int64_t t_ = 0;
};

}  // namespace tg::optim
