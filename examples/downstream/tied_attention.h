// A new layer and a new attention variant written outside tapegrad's tree.
//
// TiedHead: one causal attention head whose query and key are the same
// projection, q = k = x W^T (W [HS, C], no bias), so its bilinear matrix is
// symmetric and positive semi-definite:
//   scores = q q^T = x (W^T W) x^T,   M = W^T W
// values go through the new op: v = relu2(x Wv^T + bv).
//
// TiedAttention: NH TiedHeads side by side, concatenated, out_proj per the spec;
// registered as "tied" for --attention. It tells the gradient probe that head h
// is M_h = A^T B with A = B = heads.h.W_qk.weight (nn::Attention::bilinear_heads).
#pragma once

#include <tapegrad/nn/attention.h>

namespace downstream {

class TiedHead : public tg::nn::Layer<TiedHead> {
public:
    TiedHead(int64_t d_in, int64_t head_dim, int64_t context_length, float dropout, bool qkv_bias);
    // observe(scores) hands the pre-mask scores to the owner's probe hook.
    tg::Tensor forward(const tg::Tensor& x, const std::function<tg::Tensor(tg::Tensor)>& observe);
    std::shared_ptr<tg::nn::Linear> W_qk, W_value;
    std::shared_ptr<tg::nn::Dropout> dropout;
    tg::Tensor mask;
    int64_t head_dim;
};

class TiedAttention : public tg::nn::Attention {
public:
    explicit TiedAttention(const tg::nn::AttentionSpec& s);
    tg::Tensor forward(const tg::Tensor& x) override;
    std::vector<tg::nn::BilinearHead> bilinear_heads() const override;
    std::vector<std::shared_ptr<TiedHead>> heads;
    std::shared_ptr<tg::nn::Linear> out_proj;
};

// Adds "tied" to tapegrad's attention registry.
void register_tied_attention();

}  // namespace downstream
