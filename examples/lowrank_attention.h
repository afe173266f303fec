// Worked example of a new layer (docs/extending.md): a third attention variant
// whose merged matrix is low rank plus diagonal. Per head h:
//   M_h = U_h^T V_h + diag(d_h)      U_h, V_h [R, C], d_h [C]  (R = head size)
//   scores = x M_h x^T = (x U_h^T)(x V_h^T)^T + (x * d_h) x^T
// then, as in the other variants, the causal mask, softmax(scores / sqrt(HS)),
// dropout and the head's values; heads concatenated; out_proj per the switch.
// Parameters: att.heads.{h}.U.weight, att.heads.{h}.V.weight, att.heads.{h}.d,
// att.heads.{h}.W_value.weight. Registered as --attention lowrank.
#pragma once

#include "nn/attention.h"

namespace tg::examples {

class LowRankDiagHead : public nn::Layer<LowRankDiagHead> {
public:
    LowRankDiagHead(int64_t d_in, int64_t head_dim, int64_t context_length, float dropout, bool qkv_bias);
    Tensor forward(const Tensor& x);
    std::shared_ptr<nn::Linear> U, V, W_value;
    std::shared_ptr<nn::Dropout> dropout;
    Tensor d, mask;
    int64_t head_dim;
};

class LowRankDiagAttention : public nn::Attention {
public:
    explicit LowRankDiagAttention(const nn::AttentionSpec& s);
    Tensor forward(const Tensor& x) override;
    std::vector<std::shared_ptr<LowRankDiagHead>> heads;
    std::shared_ptr<nn::Linear> out_proj;
};

// Adds "lowrank" to the registry behind --attention (the tapegrad CLI calls it).
void register_lowrank_attention();

}  // namespace tg::examples
