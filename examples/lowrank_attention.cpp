#include "examples/lowrank_attention.h"

namespace tg::examples {

LowRankDiagHead::LowRankDiagHead(int64_t d_in, int64_t hd, int64_t context_length, float p, bool qkv_bias)
    : head_dim(hd) {
    U = register_module("U", std::make_shared<nn::Linear>(d_in, hd, qkv_bias));
    V = register_module("V", std::make_shared<nn::Linear>(d_in, hd, qkv_bias));
    W_value = register_module("W_value", std::make_shared<nn::Linear>(d_in, hd, qkv_bias));
    dropout = register_module("dropout", std::make_shared<nn::Dropout>(p));
    d = register_parameter("d", Tensor::zeros({d_in}));  // starts as pure low rank
    mask = register_buffer("mask", nn::causal_mask(context_length));
}

Tensor LowRankDiagHead::forward(const Tensor& x) {
    Tensor low = matmul((*U)(x), (*V)(x).transpose(1, 2));  // [B, T, T]
    Tensor diag = matmul(mul(x, d), x.transpose(1, 2));     // (x * d) x^T
    Tensor scores = add(low, diag).named("scores");
    Tensor w = nn::causal_attention_weights(scores, mask, head_dim, *dropout);
    return matmul(w, (*W_value)(x)).named("context");
}

LowRankDiagAttention::LowRankDiagAttention(const nn::AttentionSpec& s) : Attention(s) {
    for (int64_t h = 0; h < s.num_heads; ++h)
        heads.push_back(register_module("heads." + std::to_string(h),
                                        std::make_shared<LowRankDiagHead>(
                                            s.d_in, s.head_dim(), s.context_length, s.dropout, s.qkv_bias)));
    if (s.out_proj) out_proj = register_module("out_proj", std::make_shared<nn::Linear>(s.d_out, s.d_out));
}

Tensor LowRankDiagAttention::forward(const Tensor& x) {
    std::vector<Tensor> outs;
    for (auto& h : heads) outs.push_back((*h)(x));
    Tensor ctx = cat(outs, -1).named("context");
    return out_proj ? (*out_proj)(ctx) : ctx;
}

void register_lowrank_attention() {
    // Its traits: out_proj off by default (like alt1, a merged form); no optional
    // capability (no cached forward of its own: generation recomputes the window;
    // no bilinear heads: the probe is skipped; no converter).
    nn::AttentionTraits t{
        [](const nn::AttentionSpec& s) { return std::make_shared<LowRankDiagAttention>(s); }};
    t.out_proj = false;
    nn::register_attention("lowrank", std::move(t));
}

}  // namespace tg::examples
