// Optimizers update parameters in place under NoGradGuard. Their state (moments,
// step count) is exported as named tensors and scalars so checkpoints can save it
// and a resumed run continues bit-identically.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/tapegrad.h"

namespace tg::optim {

// All parameters' elements cut into fixed blocks of kParamBlock (a tensor's last
// block may be shorter), so one parallel pass covers every parameter, small biases
// included, in a single parallel region. Sums over the blocks (the gradient norm)
// are combined in block order, so they do not depend on the thread count.
inline constexpr int64_t kParamBlock = int64_t{1} << 16;
struct ParamBlock {
    size_t tensor;
    int64_t begin, end;
};
std::vector<ParamBlock> param_blocks(const std::vector<int64_t>& numels);
// sum_i x_i^2 in double, in a fixed order (see optimizer.cpp).
double sum_squares(const float* x, int64_t n);

struct ParamRef {
    std::string name;
    Tensor param;
};

class Optimizer {
public:
    explicit Optimizer(std::vector<ParamRef> params) : params_(std::move(params)) {}
    virtual ~Optimizer() = default;
    // One update. As a by-product the optimizer reads every gradient, so it also
    // records their global L2 norm (last_grad_norm), the figure grad_norm()
    // would compute in another pass over 650 MB.
    virtual void step() = 0;
    void zero_grad();
    double last_grad_norm() const { return grad_norm_; }
    double lr = 0;
    const std::vector<ParamRef>& params() const { return params_; }

    // State as tensors named "<kind>.<param name>" plus scalars, for checkpoints.
    virtual std::map<std::string, Tensor> state_tensors() const = 0;
    virtual std::map<std::string, double> state_scalars() const = 0;
    virtual void load_state(const std::map<std::string, Tensor>& tensors,
                            const std::map<std::string, double>& scalars) = 0;

protected:
    std::vector<ParamRef> params_;
    double grad_norm_ = 0;
};

}  // namespace tg::optim
