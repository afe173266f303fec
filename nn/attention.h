// Causal self-attention variants, all behind one interface so the GPT block, the
// CLI's --attention flag and the gradient probes treat them alike.
//
//   mha   the book's MultiHeadAttention (Chapter 3): per head h,
//         scores_h = (x Wq_h^T)(x Wk_h^T)^T = x (Wq_h^T Wk_h) x^T,  [B, T, T]
//         with Wq_h, Wk_h [R, C]; R = qk_dim, by default HS (the book)
//   alt1  MHA_alt1 from the discussion: per head a full C x C matrix S_h,
//         scores_h = S_h(x) x^T = x S_h^T x^T; heads concatenated.
// Both: causal mask with -inf, softmax(scores / sqrt(HS)), dropout on the weights,
// context = weights @ values. out_proj is a separate switch for either variant.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "nn/layers.h"

namespace tg::nn {

// What one attention layer keeps between decoding steps (batch 1, no tape):
//   mha   keys and values of every past token, k [NH, capacity, R], v [NH, capacity, HS]
//         (R = qk_dim, HS by default)
//   alt1  the layer's input x of every past token, k [capacity, C] (S_h(x_i) x_j^T
//         needs the x_j themselves, one copy shared by all heads), and each head's
//         values, v [NH, capacity, HS]
// Either way 2 C floats per token and layer (mha with qk_dim R: NH (R + HS)) (alt1 could keep x alone, C floats,
// but would then recompute every head's values over all past tokens per step).
struct AttentionCache {
    Tensor k, v;
    int64_t len = 0;  // tokens cached; the next token's position
    void reset() { len = 0; }
};

struct AttentionSpec {
    int64_t d_in = 0, d_out = 0, context_length = 0, num_heads = 1;
    float dropout = 0;
    bool qkv_bias = false;
    bool out_proj = true;
    int64_t qk_dim = 0;  // mha: query/key width per head; 0 means head_dim() (the book)
    bool uniform = false;  // mha: no query/key, every score 0 (uniform causal attention)
    int64_t head_dim() const { return d_out / num_heads; }
    int64_t qk_head_dim() const { return qk_dim > 0 ? qk_dim : head_dim(); }
};

// How one head's pre-mask scores depend on the attention input x [B, T, C]:
//   scores_h = x M_h x^T  [B, T, T],  M_h [C, C]
// with M_h given by parameter rows, so a probe can read the weights, their
// gradients and their updates without knowing the variant's class:
//   factored  M_h = A^T B,  A, B [R, C]  (mha: A = head h's rows of W_query.weight,
//                                         B = the same rows of W_key.weight, R = qk_dim)
//   merged    M_h = A^T,    A [C, C]     (alt1: A = heads.h.S.weight; `b` absent)
struct WeightRows {
    Tensor weight;  // a 2-D parameter [*, C]
    int64_t row0 = 0, rows = 0;
};
struct BilinearHead {
    WeightRows a;
    std::optional<WeightRows> b;  // absent: merged, M_h = A^T
};

// The base of every attention variant: Layer<Attention> calls the variant's
// forward through the virtual, inside the module's label scope.
class Attention : public Layer<Attention> {
public:
    virtual Tensor forward(const Tensor& x) = 0;  // x [B, T, C] -> [B, T, d_out]
    // Incremental decoding: x [1, t, C] are the tokens at positions cache.len ..
    // cache.len + t - 1; attends to the cached tokens and to themselves (causal),
    // appends what the cache keeps and returns [1, t, d_out]. Eval mode, no tape.
    virtual Tensor forward_cached(const Tensor& x, AttentionCache& cache);
    const AttentionSpec& spec() const { return spec_; }

    // Each head's M_h as above, in head order. The default (empty) means the
    // variant has no such form and the gradient probe refuses it by name.
    virtual std::vector<BilinearHead> bilinear_heads() const { return {}; }

    // The tensor to hook for G = dL/dM: a variant passes each head's pre-mask
    // scores x M_h x^T (before the 1/sqrt(HS) scale) through observed_scores()
    // during forward, and a probe set on `observe` registers a gradient hook on it:
    //   observe(scores, x, head): head >= 0 with scores [B, T, T] for one head,
    //   or head = -1 with scores [B, NH, T, T] for all heads at once (mha).
    std::function<void(const Tensor& scores, const Tensor& x, int64_t head)> observe;

protected:
    explicit Attention(const AttentionSpec& s) : spec_(s) {}
    // Labels `scores` "<scope>.scores", hands it to `observe` when set, returns it.
    Tensor observed_scores(Tensor scores, const Tensor& x, int64_t head) const;
    AttentionSpec spec_;
};

// The book's MultiHeadAttention: W_query, W_key, W_value, out_proj, mask.
// W_query and W_key are [NH R, C] (R = spec.qk_head_dim()), W_value [d_out, C].
class MultiHeadAttention : public Attention {
public:
    explicit MultiHeadAttention(const AttentionSpec& s);
    Tensor forward(const Tensor& x) override;
    Tensor forward_cached(const Tensor& x, AttentionCache& cache) override;
    std::vector<BilinearHead> bilinear_heads() const override;
    // out_proj null when switched off; W_query and W_key null with spec.uniform.
    std::shared_ptr<Linear> W_query, W_key, W_value, out_proj;
    std::shared_ptr<Dropout> dropout;
    Tensor mask;
};

// One head of MHA_alt1: S [C, C], W_value [HS, C], its own mask.
// forward(x, observe): observe(scores) is the owner's observed_scores for this head.
class CA_alt1 : public Layer<CA_alt1> {
public:
    CA_alt1(int64_t d_in, int64_t head_dim, int64_t context_length, float dropout, bool qkv_bias);
    Tensor forward(const Tensor& x, const std::function<Tensor(Tensor)>& observe);
    std::shared_ptr<Linear> S, W_value;
    std::shared_ptr<Dropout> dropout;
    Tensor mask;
    int64_t head_dim;
};

// MHA_alt1: heads.{h} = CA_alt1, concatenated on the last dim; optional out_proj.
class MHA_alt1 : public Attention {
public:
    explicit MHA_alt1(const AttentionSpec& s);
    Tensor forward(const Tensor& x) override;
    Tensor forward_cached(const Tensor& x, AttentionCache& cache) override;
    std::vector<BilinearHead> bilinear_heads() const override;
    std::vector<std::shared_ptr<CA_alt1>> heads;
    std::shared_ptr<Linear> out_proj;
};

// softmax(masked_fill(scores, mask[:T, :T], -inf) / sqrt(HS)), then dropout.
Tensor causal_attention_weights(const Tensor& scores, const Tensor& mask, int64_t head_dim,
                                const Dropout& drop);
// The same for t new queries at positions p0 .. p0 + t - 1 against p0 + t keys:
// scores [..., t, p0 + t], mask rows [p0, p0 + t), columns [0, p0 + t).
Tensor causal_attention_weights_at(const Tensor& scores, const Tensor& mask, int64_t p0, int64_t head_dim,
                                   const Dropout& drop);

// The registry behind --attention: "mha" and "alt1" are built in; an extension
// registers its own (examples/lowrank_attention.cpp). An entry is the variant's
// traits, so code outside the registry asks what a variant can do instead of
// comparing its name:
using AttentionFactory = std::function<std::shared_ptr<Attention>(const AttentionSpec&)>;
struct AttentionTraits {
    AttentionTraits() = default;
    explicit AttentionTraits(AttentionFactory f) : make(std::move(f)) {}
    AttentionFactory make;
    // Default: out_proj when the config does not say (--out-proj); mha on (the
    // book), alt1 off (the discussion).
    bool out_proj = false;
    // Optional capabilities. Without one a variant still trains, samples,
    // compares, sweeps and reports; what needs it says once what it skips.
    //   cached_forward  a forward_cached of its own; else Attention's recomputes
    //                   the window, O(T^2) instead of O(T) per decoded token
    //   bilinear_heads  bilinear_heads() gives each head's M_h (the gradient probe)
    //   qk_factors      separate query and key factors of width qk_dim (mha):
    //                   --qk-dim, --init-gain, --uniform-attention; a checkpoint
    //                   always records qk_dim (older files without it mean HS)
    //   converts_to     a converter (models/convert.h) to that variant with the
    //                   same function (mha -> alt1): convert, compare --fork-at
    //   product_of      init "product": drawn as that variant's factors and
    //                   converted (alt1 from mha, models/gpt.h build_model)
    bool cached_forward = false;
    bool bilinear_heads = false;
    bool qk_factors = false;
    std::string converts_to, product_of;
    // Where reports and sweeps list it: lower first (the book's mha 0), then by name.
    int report_order = 1;
};
void register_attention(const std::string& name, AttentionTraits traits);
// Shorthand for an extension that states nothing: no optional capability, out_proj off.
void register_attention(const std::string& name, AttentionFactory factory);
std::shared_ptr<Attention> make_attention(const std::string& name, const AttentionSpec& spec);
std::vector<std::string> attention_names();
// The registered variant's traits; refused (naming the known ones) when unknown.
const AttentionTraits& attention_traits(const std::string& name);
// The same, or nullptr for a name nothing registered (a checkpoint or run folder
// of an extension this program lacks reads as a variant without capabilities).
const AttentionTraits* find_attention_traits(const std::string& name);

}  // namespace tg::nn
