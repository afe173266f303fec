#include "optim/adamw.h"

#include <fmt/format.h>

#include <cmath>

namespace tg::optim {

void Optimizer::zero_grad() {
    for (auto& p : params_) p.param.zero_grad();
}

AdamW::AdamW(std::vector<ParamRef> params, AdamWOptions opt) : Optimizer(std::move(params)), options(opt) {
    lr = opt.lr;
    for (auto& p : params_) {
        m_.push_back(Tensor::zeros(p.param.shape()));
        v_.push_back(Tensor::zeros(p.param.shape()));
    }
}

void AdamW::step() {
    NoGradGuard ng;
    t_++;
    const double b1 = options.beta1, b2 = options.beta2;
    const float decay = static_cast<float>(1.0 - lr * options.weight_decay);
    const double bc1 = 1.0 - std::pow(b1, static_cast<double>(t_));
    const double bc2 = 1.0 - std::pow(b2, static_cast<double>(t_));
    const float step_size = static_cast<float>(lr / bc1);
    const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
    const float fb1 = static_cast<float>(b1), fb2 = static_cast<float>(b2);
    const float one_b1 = static_cast<float>(1.0 - b1), one_b2 = static_cast<float>(1.0 - b2);
    const float eps = static_cast<float>(options.eps);
    for (size_t i = 0; i < params_.size(); ++i) {
        Tensor& p = params_[i].param;
        Tensor g = p.grad();
        if (!g.defined()) continue;  // as PyTorch: parameters without a gradient are skipped
        float *pp = p.data(), *pm = m_[i].data(), *pv = v_[i].data();
        const float* pg = g.data();
        for (int64_t j = 0, n = p.numel(); j < n; ++j) {
            float gj = pg[j];
            float pj = pp[j] * decay;
            float mj = pm[j] * fb1 + gj * one_b1;
            float vj = pv[j] * fb2 + (gj * gj) * one_b2;
            float denom = std::sqrt(vj) / bc2_sqrt + eps;
            pp[j] = pj - step_size * (mj / denom);
            pm[j] = mj;
            pv[j] = vj;
        }
    }
}

std::map<std::string, Tensor> AdamW::state_tensors() const {
    std::map<std::string, Tensor> out;
    for (size_t i = 0; i < params_.size(); ++i) {
        out["exp_avg." + params_[i].name] = m_[i];
        out["exp_avg_sq." + params_[i].name] = v_[i];
    }
    return out;
}

std::map<std::string, double> AdamW::state_scalars() const {
    return {{"step", static_cast<double>(t_)}, {"lr", lr}};
}

void AdamW::load_state(const std::map<std::string, Tensor>& tensors, const std::map<std::string, double>& scalars) {
    for (size_t i = 0; i < params_.size(); ++i) {
        for (auto [kind, dst] : {std::pair{"exp_avg.", &m_[i]}, std::pair{"exp_avg_sq.", &v_[i]}}) {
            auto it = tensors.find(kind + params_[i].name);
            if (it == tensors.end())
                throw Error("tapegrad: AdamW::load_state: missing optimizer tensor '" + std::string(kind) +
                            params_[i].name + "'");
            if (it->second.shape() != dst->shape())
                throw Error(fmt::format("tapegrad: AdamW::load_state: '{}{}' has shape {}, parameter has {}", kind,
                                        params_[i].name, shape_str(it->second.shape()), shape_str(dst->shape())));
            std::vector<float> v = it->second.to_vector();
            std::copy(v.begin(), v.end(), dst->data());
        }
    }
    auto st = scalars.find("step");
    if (st == scalars.end()) throw Error("tapegrad: AdamW::load_state: missing 'step'");
    t_ = static_cast<int64_t>(st->second);
    if (auto l = scalars.find("lr"); l != scalars.end()) lr = l->second;
}

}  // namespace tg::optim
