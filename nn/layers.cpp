#include "nn/layers.h"

#include "core/memory.h"

namespace tg::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias) {
    Tensor w = Tensor::empty({out, in});
    double wb = linear_weight_bound(in);
    default_generator().fill_uniform(w.data(), w.numel(), -wb, wb);
    weight = register_parameter("weight", w);
    if (with_bias) {
        Tensor b = Tensor::empty({out});
        double bb = linear_bias_bound(in);
        default_generator().fill_uniform(b.data(), b.numel(), -bb, bb);
        bias = register_parameter("bias", b);
    }
}

Tensor Linear::forward(const Tensor& x) const { return linear(x, weight, bias); }

Embedding::Embedding(int64_t num, int64_t dim) {
    Tensor w = Tensor::empty({num, dim});
    default_generator().fill_normal(w.data(), w.numel(), 0.0, 1.0);
    weight = register_parameter("weight", w);
}

Tensor Embedding::forward(const Ids& ids) const { return embedding(weight, ids); }

LayerNorm::LayerNorm(int64_t dim, float eps_) : eps(eps_) {
    scale = register_parameter("scale", Tensor::ones({dim}));
    shift = register_parameter("shift", Tensor::zeros({dim}));
}

Tensor LayerNorm::forward(const Tensor& x) const { return layer_norm(x, scale, shift, eps); }

Tensor GELU::forward(const Tensor& x) const { return gelu(x); }

// Activations are batch-first: under data parallelism dim 0 is this rank's rows (core/ops.h).
Tensor Dropout::forward(const Tensor& x) const { return dropout(x, p, is_training(), DropoutSplit::rows); }

FeedForward::FeedForward(int64_t emb_dim) {
    // Registered as "layers.0/1/2" to match the book's nn.Sequential names.
    up = register_module("layers.0", std::make_shared<Linear>(emb_dim, 4 * emb_dim));
    act = register_module("layers.1", std::make_shared<GELU>());
    down = register_module("layers.2", std::make_shared<Linear>(4 * emb_dim, emb_dim));
}

// GELU's output is freed once the down projection has read it, and refilled in
// backward from GELU's saved input (core/memory.h).
Tensor FeedForward::forward(const Tensor& x) const {
    Tensor a = (*act)((*up)(x));
    Tensor y = (*down)(a);
    recompute_in_backward(a);
    return y;
}

Tensor causal_mask(int64_t T) {
    Tensor m = Tensor::zeros({T, T});
    for (int64_t i = 0; i < T; ++i)
        for (int64_t j = i + 1; j < T; ++j) m.data()[i * T + j] = 1.0f;
    return m;
}

}  // namespace tg::nn
