// SGD as torch.optim.SGD (dampening 0, no Nesterov):
//   d = g + wd p;  with momentum mu: b = d on the first step, else b = mu b + d; d = b
//   p -= lr d
#pragma once

#include "optim/optimizer.h"

namespace tg::optim {

struct SGDOptions {
    double lr = 1e-2, momentum = 0, weight_decay = 0;
};

class SGD : public Optimizer {
public:
    SGD(std::vector<ParamRef> params, SGDOptions opt);
    void step() override;
    std::map<std::string, Tensor> state_tensors() const override;
    std::map<std::string, double> state_scalars() const override;
    void load_state(const std::map<std::string, Tensor>& tensors,
                    const std::map<std::string, double>& scalars) override;
    SGDOptions options;

private:
    std::vector<Tensor> buf_;
    bool has_buf_ = false;
};

}  // namespace tg::optim
