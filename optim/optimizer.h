// Optimizers update parameters in place under NoGradGuard. Their state (moments,
// step count) is exported as named tensors and scalars so checkpoints can save it
// and a resumed run continues bit-identically.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/tapegrad.h"

namespace tg::optim {

struct ParamRef {
    std::string name;
    Tensor param;
};

class Optimizer {
public:
    explicit Optimizer(std::vector<ParamRef> params) : params_(std::move(params)) {}
    virtual ~Optimizer() = default;
    virtual void step() = 0;
    void zero_grad();
    double lr = 0;
    const std::vector<ParamRef>& params() const { return params_; }

    // State as tensors named "<kind>.<param name>" plus scalars, for checkpoints.
    virtual std::map<std::string, Tensor> state_tensors() const = 0;
    virtual std::map<std::string, double> state_scalars() const = 0;
    virtual void load_state(const std::map<std::string, Tensor>& tensors, const std::map<std::string, double>& scalars) = 0;

protected:
    std::vector<ParamRef> params_;
};

}  // namespace tg::optim
