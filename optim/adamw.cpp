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

namespace {

struct Ptrs {
    float *p, *m, *v;
    const float* g;
};
struct Coeffs {
    float decay, b1, one_b1, b2, one_b2, bc2_sqrt, eps, step_size;
};

// One parameter j, as PyTorch's AdamW (decoupled decay, bias corrections):
//   p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)
inline void update(const Ptrs& q, int64_t j, const Coeffs& k) {
    float gj = q.g[j];
    float pj = q.p[j] * k.decay;
    float mj = q.m[j] * k.b1 + gj * k.one_b1;
    float vj = q.v[j] * k.b2 + (gj * gj) * k.one_b2;
    float denom = std::sqrt(vj) / k.bc2_sqrt + k.eps;
    q.p[j] = pj - k.step_size * (mj / denom);
    q.m[j] = mj;
    q.v[j] = vj;
}

// The update of [begin, end) and sum g^2 over it, in one pass: g is read once.
// The squares go to 8 double lanes (element begin + i to lane i % 8), added in
// order at the end: sum_squares()'s association, so the norm keeps its bits;
// the lanes let the loop vectorise where one double sum would not.
// (sqrt vectorises only without errno: this file is built -fno-math-errno,
// optim/CMakeLists.txt; a non-negative v never sets errno anyway.)
double update_block(const Ptrs& q, int64_t begin, int64_t end, const Coeffs& k) {
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = begin;
    for (; j + 8 <= end; j += 8)
        for (int l = 0; l < 8; ++l) {
            lane[l] += static_cast<double>(q.g[j + l]) * q.g[j + l];
            update(q, j + l, k);
        }
    for (; j < end; ++j) {
        lane[(j - begin) % 8] += static_cast<double>(q.g[j]) * q.g[j];
        update(q, j, k);
    }
    double s = 0;
    for (double l : lane) s += l;
    return s;
}

}  // namespace

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
    std::vector<Ptrs> ptr(params_.size());
    std::vector<Tensor> grads(params_.size());
    for (size_t i = 0; i < params_.size(); ++i) {
        grads[i] = params_[i].param.grad();
        ptr[i] = {params_[i].param.data(), m_[i].data(), v_[i].data(),
                  grads[i].defined() ? grads[i].data() : nullptr};
    }
    // One pass over every block of p, g, m, v (memory-bound: 28 bytes per
    // parameter), on both cores; the gradient's squared norm comes for free.
    const Coeffs k{decay, fb1, one_b1, fb2, one_b2, bc2_sqrt, eps, step_size};
    std::vector<double> sq(blocks_.size(), 0.0);
    parallel_for(static_cast<int64_t>(blocks_.size()), 1, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
            const ParamBlock& blk = blocks_[b];
            const Ptrs& q = ptr[blk.tensor];
            if (!q.g) continue;
            sq[b] = update_block(q, blk.begin, blk.end, k);
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
