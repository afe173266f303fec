// The book's small layers: Linear, Embedding, LayerNorm, GELU, Dropout, FeedForward.
// Initialisation draws from the global generator in construction order, with
// PyTorch's transforms, so a seeded model equals PyTorch's bit for bit.
#pragma once

#include "nn/module.h"

namespace tg::nn {

// y = x W^T + b; weight [out, in], kaiming-uniform init like nn.Linear.
class Linear : public Layer<Linear> {
public:
    Linear(int64_t in, int64_t out, bool bias = true);
    Tensor forward(const Tensor& x) const;
    Tensor weight, bias;  // bias undefined when bias = false
};

// weight [num, dim], N(0, 1) init like nn.Embedding.
class Embedding : public Layer<Embedding> {
public:
    Embedding(int64_t num, int64_t dim);
    Tensor forward(const Ids& ids) const;
    Tensor weight;
};

// The book's LayerNorm: `scale` (ones), `shift` (zeros), eps 1e-5, biased variance.
class LayerNorm : public Layer<LayerNorm> {
public:
    explicit LayerNorm(int64_t dim, float eps = 1e-5f);
    Tensor forward(const Tensor& x) const;
    Tensor scale, shift;
    float eps;
};

class GELU : public Layer<GELU> {
public:
    Tensor forward(const Tensor& x) const;
};

// Its input is an activation with the batch in dim 0 (DropoutSplit::rows).
class Dropout : public Layer<Dropout> {
public:
    explicit Dropout(float p) : p(p) {}
    Tensor forward(const Tensor& x) const;
    float p;
};

// layers.0 = Linear(C, 4C), layers.1 = GELU, layers.2 = Linear(4C, C).
class FeedForward : public Layer<FeedForward> {
public:
    explicit FeedForward(int64_t emb_dim);
    Tensor forward(const Tensor& x) const;
    std::shared_ptr<Linear> up, down;
    std::shared_ptr<GELU> act;
};

// A causal mask buffer: triu(ones(T, T), diagonal = 1), 1 where attention is barred.
Tensor causal_mask(int64_t T);

}  // namespace tg::nn
