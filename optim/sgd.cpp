#include "optim/sgd.h"

#include "optim/schedule.h"

namespace tg::optim {

SGD::SGD(std::vector<ParamRef> params, SGDOptions opt) : Optimizer(std::move(params)), options(opt) {
    lr = opt.lr;
    if (opt.momentum != 0)
        for (auto& p : params_) buf_.push_back(Tensor::zeros(p.param.shape()));
}

void SGD::step() {
    NoGradGuard ng;
    std::vector<Tensor> ps;
    for (auto& p : params_) ps.push_back(p.param);
    grad_norm_ = grad_norm(ps);  // SGD is not the hot path: a separate pass is fine
    const float flr = static_cast<float>(lr), wd = static_cast<float>(options.weight_decay);
    const float mu = static_cast<float>(options.momentum);
    for (size_t i = 0; i < params_.size(); ++i) {
        Tensor& p = params_[i].param;
        Tensor g = p.grad();
        if (!g.defined()) continue;
        float* pp = p.data();
        const float* pg = g.data();
        for (int64_t j = 0, n = p.numel(); j < n; ++j) {
            float d = wd != 0.0f ? pg[j] + wd * pp[j] : pg[j];
            if (mu != 0.0f) {
                float& b = buf_[i].data()[j];
                b = has_buf_ ? mu * b + d : d;
                d = b;
            }
            pp[j] -= flr * d;
        }
    }
    if (mu != 0.0f) has_buf_ = true;
}

std::map<std::string, Tensor> SGD::state_tensors() const {
    std::map<std::string, Tensor> out;
    for (size_t i = 0; i < buf_.size(); ++i) out["momentum_buffer." + params_[i].name] = buf_[i];
    return out;
}

std::map<std::string, double> SGD::state_scalars() const {
    return {{"has_buf", has_buf_ ? 1.0 : 0.0}, {"lr", lr}};
}

void SGD::load_state(const std::map<std::string, Tensor>& tensors,
                     const std::map<std::string, double>& scalars) {
    for (size_t i = 0; i < buf_.size(); ++i) {
        auto it = tensors.find("momentum_buffer." + params_[i].name);
        if (it == tensors.end() || it->second.shape() != buf_[i].shape())
            throw Error("tapegrad: SGD::load_state: missing or mismatched momentum buffer for '" +
                        params_[i].name + "'");
        std::vector<float> v = it->second.to_vector();
        std::copy(v.begin(), v.end(), buf_[i].data());
    }
    if (auto h = scalars.find("has_buf"); h != scalars.end()) has_buf_ = h->second != 0;
    if (auto l = scalars.find("lr"); l != scalars.end()) lr = l->second;
}

}  // namespace tg::optim
