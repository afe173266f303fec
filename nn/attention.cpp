#include "nn/attention.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <map>

#include "core/memory.h"

namespace tg::nn {

Tensor causal_attention_weights(const Tensor& scores, const Tensor& mask, int64_t head_dim,
                                const Dropout& drop) {
    int64_t T = scores.shape().back();
    Tensor m = mask.slice(0, 0, T).slice(1, 0, T);
    Tensor masked = masked_fill(scores, m, -std::numeric_limits<float>::infinity());
    Tensor w = softmax(div(masked, std::sqrt(static_cast<float>(head_dim)))).named("weights");
    return drop(w);
}

// x must be [B, T, d_in] with T <= context_length: refused here, naming the layer,
// rather than by whichever op inside would trip over the shape.
static void check_attention_input(const Tensor& x, const AttentionSpec& s) {
    if (x.dim() != 3 || x.shape()[2] != s.d_in)
        throw Error(fmt::format("tapegrad: attention: input {} must be [B, T, {}] (d_in)",
                                shape_str(x.shape()), s.d_in));
    if (x.shape()[1] > s.context_length)
        throw Error(fmt::format("tapegrad: attention: {} tokens exceed context_length {}", x.shape()[1],
                                s.context_length));
}

Tensor Attention::observed_scores(Tensor scores, const Tensor& x, int64_t head) const {
    scores.named("scores");
    if (observe) observe(scores, x, head);
    return scores;
}

MultiHeadAttention::MultiHeadAttention(const AttentionSpec& s) : Attention(s) {
    if (s.d_out % s.num_heads != 0)
        throw Error(fmt::format("tapegrad: MultiHeadAttention: d_out {} is not divisible by num_heads {}",
                                s.d_out, s.num_heads));
    if (s.qk_dim < 0)
        throw Error(
            fmt::format("tapegrad: MultiHeadAttention: qk_dim must be >= 1 (0: head_dim), got {}", s.qk_dim));
    int64_t qk = s.num_heads * s.qk_head_dim();
    if (!s.uniform) {
        W_query = register_module("W_query", std::make_shared<Linear>(s.d_in, qk, s.qkv_bias));
        W_key = register_module("W_key", std::make_shared<Linear>(s.d_in, qk, s.qkv_bias));
    }
    W_value = register_module("W_value", std::make_shared<Linear>(s.d_in, s.d_out, s.qkv_bias));
    if (s.out_proj) out_proj = register_module("out_proj", std::make_shared<Linear>(s.d_out, s.d_out));
    dropout = register_module("dropout", std::make_shared<Dropout>(s.dropout));
    mask = register_buffer("mask", causal_mask(s.context_length));
}

// q, k [B, T, NH R] viewed as [B, NH, T, R] and v [B, T, C] as [B, NH, T, HS]
// without copies; q @ k^T reads them in place through gemm's leading dimension.
// The scale stays 1/sqrt(HS) for any R (both book variants scale by the head size).
Tensor MultiHeadAttention::forward(const Tensor& x) {
    check_attention_input(x, spec_);
    int64_t B = x.size(0), T = x.size(1), NH = spec_.num_heads, HS = spec_.head_dim(),
            R = spec_.qk_head_dim();
    Tensor v = (*W_value)(x).view({B, T, NH, HS}).transpose(1, 2);
    Tensor scores;  // [B, NH, T, T]
    if (spec_.uniform) {
        scores = Tensor::zeros({B, NH, T, T});  // softmax of the masked zeros: 1/(i+1) over j <= i
    } else {
        Tensor k = (*W_key)(x).view({B, T, NH, R}).transpose(1, 2);
        Tensor q = (*W_query)(x).view({B, T, NH, R}).transpose(1, 2);
        scores = observed_scores(matmul(q, k.transpose(2, 3)), x, -1);
    }
    Tensor w = causal_attention_weights(scores, mask, HS, *dropout);
    Tensor wv = matmul(w, v);
    recompute_in_backward(w);  // dropout-applied weights: refilled from softmax output and mask bits
    Tensor ctx = wv.transpose(1, 2).reshape({B, T, spec_.d_out}).named("context");
    return out_proj ? (*out_proj)(ctx) : ctx;
}

// Head h of M = Wq^T Wk: rows [h R, (h+1) R) of W_query.weight and W_key.weight.
std::vector<BilinearHead> MultiHeadAttention::bilinear_heads() const {
    std::vector<BilinearHead> out;
    if (spec_.uniform) return out;  // no M_h: the scores do not depend on x
    int64_t R = spec_.qk_head_dim();
    for (int64_t h = 0; h < spec_.num_heads; ++h)
        out.push_back({{W_query->weight, h * R, R}, WeightRows{W_key->weight, h * R, R}});
    return out;
}

CA_alt1::CA_alt1(int64_t d_in, int64_t hd, int64_t context_length, float p, bool qkv_bias) : head_dim(hd) {
    S = register_module("S", std::make_shared<Linear>(d_in, d_in, qkv_bias));
    W_value = register_module("W_value", std::make_shared<Linear>(d_in, hd, qkv_bias));
    dropout = register_module("dropout", std::make_shared<Dropout>(p));
    mask = register_buffer("mask", causal_mask(context_length));
}

// scores = S(x) @ x^T  [B, T, T]: x^T is a transposed view, a gemm flag.
Tensor CA_alt1::forward(const Tensor& x, const std::function<Tensor(Tensor)>& observe) {
    Tensor sx = (*S)(x);
    Tensor scores = observe(matmul(sx, x.transpose(1, 2)));
    Tensor w = causal_attention_weights(scores, mask, head_dim, *dropout);
    Tensor ctx = matmul(w, (*W_value)(x)).named("context");
    recompute_in_backward(w);  // as in MultiHeadAttention::forward
    return ctx;
}

MHA_alt1::MHA_alt1(const AttentionSpec& s) : Attention(s) {
    if (s.d_out % s.num_heads != 0)
        throw Error(fmt::format("tapegrad: MHA_alt1: d_out {} is not divisible by num_heads {}", s.d_out,
                                s.num_heads));
    for (int64_t h = 0; h < s.num_heads; ++h)
        heads.push_back(register_module(
            "heads." + std::to_string(h),
            std::make_shared<CA_alt1>(s.d_in, s.head_dim(), s.context_length, s.dropout, s.qkv_bias)));
    if (s.out_proj) out_proj = register_module("out_proj", std::make_shared<Linear>(s.d_out, s.d_out));
}

Tensor MHA_alt1::forward(const Tensor& x) {
    check_attention_input(x, spec_);
    std::vector<Tensor> outs;
    for (size_t h = 0; h < heads.size(); ++h)
        outs.push_back((*heads[h])(
            x, [&](Tensor scores) { return observed_scores(scores, x, static_cast<int64_t>(h)); }));
    Tensor ctx = cat(outs, -1).named("context");
    return out_proj ? (*out_proj)(ctx) : ctx;
}

// Head h: M = S_h^T, merged (scores = S_h(x) x^T = x S_h^T x^T).
std::vector<BilinearHead> MHA_alt1::bilinear_heads() const {
    std::vector<BilinearHead> out;
    for (auto& h : heads) out.push_back({{h->S->weight, 0, spec_.d_in}, std::nullopt});
    return out;
}

namespace {
// Program-lifetime: what was registered stays for every later run.
std::map<std::string, AttentionTraits>& registry() {
    static std::map<std::string, AttentionTraits> r = [] {
        AttentionTraits mha{[](const AttentionSpec& s) { return std::make_shared<MultiHeadAttention>(s); }};
        mha.out_proj = mha.cached_forward = mha.bilinear_heads = mha.qk_factors = true;
        mha.converts_to = "alt1";
        mha.report_order = 0;
        AttentionTraits alt1{[](const AttentionSpec& s) { return std::make_shared<MHA_alt1>(s); }};
        alt1.cached_forward = alt1.bilinear_heads = true;
        alt1.product_of = "mha";
        return std::map<std::string, AttentionTraits>{{"mha", mha}, {"alt1", alt1}};
    }();
    return r;
}

std::string known_names() {
    std::string known;
    for (auto& n : attention_names()) known += (known.empty() ? "" : ", ") + n;
    return known;
}
}  // namespace

void register_attention(const std::string& name, AttentionTraits traits) {
    if (!traits.make) throw Error("tapegrad: register_attention: '" + name + "' has no factory");
    registry()[name] = std::move(traits);
}

void register_attention(const std::string& name, AttentionFactory factory) {
    register_attention(name, AttentionTraits{std::move(factory)});
}

const AttentionTraits* find_attention_traits(const std::string& name) {
    auto it = registry().find(name);
    return it == registry().end() ? nullptr : &it->second;
}

const AttentionTraits& attention_traits(const std::string& name) {
    if (const AttentionTraits* t = find_attention_traits(name)) return *t;
    throw Error("tapegrad: unknown attention '" + name + "' (known: " + known_names() + ")");
}

std::shared_ptr<Attention> make_attention(const std::string& name, const AttentionSpec& spec) {
    return attention_traits(name).make(spec);
}

std::vector<std::string> attention_names() {
    std::vector<std::string> out;
    for (auto& [n, t] : registry()) out.push_back(n);
    return out;
}

}  // namespace tg::nn
