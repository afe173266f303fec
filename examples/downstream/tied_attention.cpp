#include "tied_attention.h"

#include "relu2.h"

namespace downstream {

using tg::Tensor;

TiedHead::TiedHead(int64_t d_in, int64_t hd, int64_t context_length, float p, bool qkv_bias) : head_dim(hd) {
    W_qk =
        register_module("W_qk", std::make_shared<tg::nn::Linear>(d_in, hd, false));  // no bias: pure x M x^T
    W_value = register_module("W_value", std::make_shared<tg::nn::Linear>(d_in, hd, qkv_bias));
    dropout = register_module("dropout", std::make_shared<tg::nn::Dropout>(p));
    mask = register_buffer("mask", tg::nn::causal_mask(context_length));
}

// x [B, T, C] -> [B, T, HS]; scores = q q^T [B, T, T].
Tensor TiedHead::forward(const Tensor& x, const std::function<Tensor(Tensor)>& observe) {
    Tensor q = (*W_qk)(x);
    Tensor scores = observe(tg::matmul(q, q.transpose(1, 2)));
    Tensor w = tg::nn::causal_attention_weights(scores, mask, head_dim, *dropout);
    return tg::matmul(w, relu2((*W_value)(x))).named("context");
}

TiedAttention::TiedAttention(const tg::nn::AttentionSpec& s) : Attention(s) {
    for (int64_t h = 0; h < s.num_heads; ++h)
        heads.push_back(register_module(
            "heads." + std::to_string(h),
            std::make_shared<TiedHead>(s.d_in, s.head_dim(), s.context_length, s.dropout, s.qkv_bias)));
    if (s.out_proj)
        out_proj = register_module("out_proj", std::make_shared<tg::nn::Linear>(s.d_out, s.d_out));
}

Tensor TiedAttention::forward(const Tensor& x) {
    std::vector<Tensor> outs;
    for (size_t h = 0; h < heads.size(); ++h)
        outs.push_back((*heads[h])(
            x, [&](Tensor scores) { return observed_scores(scores, x, static_cast<int64_t>(h)); }));
    Tensor ctx = tg::cat(outs, -1).named("context");
    return out_proj ? (*out_proj)(ctx) : ctx;
}

// M_h = W_h^T W_h: both factors are all rows of heads.h.W_qk.weight [HS, C].
std::vector<tg::nn::BilinearHead> TiedAttention::bilinear_heads() const {
    std::vector<tg::nn::BilinearHead> out;
    for (auto& h : heads) {
        tg::nn::WeightRows w{h->W_qk->weight, 0, h->head_dim};
        out.push_back({w, w});
    }
    return out;
}

void register_tied_attention() {
    // Its traits: out_proj off by default; bilinear heads (M_h = W^T W) for the
    // probe; no cached forward of its own (generation recomputes the window) and
    // no converter.
    tg::nn::AttentionTraits t{
        [](const tg::nn::AttentionSpec& s) { return std::make_shared<TiedAttention>(s); }};
    t.out_proj = false;
    t.bilinear_heads = true;
    tg::nn::register_attention("tied", std::move(t));
}

}  // namespace downstream
