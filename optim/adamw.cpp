#include "optim/adamw.h"

#include <fmt/format.h>

#include <cmath>

#include "core/parallel.h"

namespace tg::optim {

AdamW::AdamW(std::vector<ParamRef> params, AdamWOptions opt) : Optimizer(std::move(params)), options(opt) {
    lr = opt.lr;
    for (auto& p : params_) {
        m_.push_back(Tensor::zeros(p.param.shape()));
        v_.push_back(Tensor::zeros(p.param.shape()));
    }
    std::vector<int64_t> numels;
    for (auto& p : params_) numels.push_back(p.param.numel());
    blocks_ = param_blocks(numels);
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
    // Raw pointers first (Tensor handles are not shared across threads); a
    // parameter without a gradient is skipped, as in PyTorch.
    struct Ptrs {
        float *p, *m, *v;
        const float* g;
    };
    std::vector<Ptrs> ptr(params_.size());
    std::vector<Tensor> grads(params_.size());
    for (size_t i = 0; i < params_.size(); ++i) {
        grads[i] = params_[i].param.grad();
        ptr[i] = {params_[i].param.data(), m_[i].data(), v_[i].data(),
                  grads[i].defined() ? grads[i].data() : nullptr};
    }
    // One pass over every block of p, g, m, v (memory-bound: 28 bytes per
    // parameter), on both cores; the gradient's squared norm comes for free.
    std::vector<double> sq(blocks_.size(), 0.0);
    parallel_for(static_cast<int64_t>(blocks_.size()), 1, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
            const ParamBlock& blk = blocks_[b];
            const Ptrs& q = ptr[blk.tensor];
            if (!q.g) continue;
            // Separate loop, while the block is in cache: a double accumulator in
            // the update loop would keep that loop from vectorising.
            sq[b] = sum_squares(q.g + blk.begin, blk.end - blk.begin);
            for (int64_t j = blk.begin; j < blk.end; ++j) {
                float gj = q.g[j];
                float pj = q.p[j] * decay;
                float mj = q.m[j] * fb1 + gj * one_b1;
                float vj = q.v[j] * fb2 + (gj * gj) * one_b2;
                float denom = std::sqrt(vj) / bc2_sqrt + eps;
                q.p[j] = pj - step_size * (mj / denom);
                q.m[j] = mj;
                q.v[j] = vj;
            }
        }
    });
    double total = 0;
    for (double s : sq) total += s;
    grad_norm_ = std::sqrt(total);
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

void AdamW::load_state(const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, double>& scalars) {
    for (size_t i = 0; i < params_.size(); ++i) {
        for (auto [kind, dst] : {std::pair{"exp_avg.", &m_[i]}, std::pair{"exp_avg_sq.", &v_[i]}}) {
            auto it = tensors.find(kind + params_[i].name);
            if (it == tensors.end())
                throw Error("tapegrad: AdamW::load_state: missing optimizer tensor '" + std::string(kind) +
                            params_[i].name + "'");
            if (it->second.shape() != dst->shape())
                throw Error(fmt::format("tapegrad: AdamW::load_state: '{}{}' has shape {}, parameter has {}",
                                        kind, params_[i].name, shape_str(it->second.shape()),
                                        shape_str(dst->shape())));
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
