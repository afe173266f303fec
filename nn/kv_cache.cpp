// KV cache: the attention variants' incremental forward for decoding (batch 1).
//
// A decoding step feeds only the new tokens x [1, t, C] at positions p0 .. p0+t-1
// (p0 = cache.len). Queries come from the new tokens; keys and values are the
// cache's rows [0, p0) plus the new ones, so with T = p0 + t
//   mha   scores_h = q_h [t, HS] @ K_h[:T]^T [HS, T]            per head, [1, NH, t, T]
//   alt1  scores_h = S_h(x) [t, C] @ X[:T]^T [C, T]              per head, [1, t, T]
// then the causal mask rows [p0, p0+t) (a new token sees every cached one and the
// new ones up to itself), softmax(scores / sqrt(HS)), and weights @ V_h[:T].
// These are the same products as the full forward restricted to the last t rows,
// so the result equals the uncached forward up to float rounding (the GEMM sees
// different shapes). The cache is preallocated at context_length rows on first
// use; nothing here records on the tape (callers hold a NoGradGuard).
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "nn/attention.h"

namespace tg::nn {
namespace {

void check_step(const Tensor& x, const AttentionCache& cache, const AttentionSpec& spec, const char* who) {
    if (grad_enabled())
        throw Error(
            fmt::format("tapegrad: {}::forward_cached: decoding runs without the tape (NoGradGuard)", who));
    if (x.dim() != 3 || x.size(0) != 1)
        throw Error(fmt::format("tapegrad: {}::forward_cached: x must be [1, t, C], got {}", who,
                                shape_str(x.shape())));
    if (cache.len + x.size(1) > spec.context_length)
        throw Error(
            fmt::format("tapegrad: {}::forward_cached: {} cached + {} new tokens exceed context_length {}",
                        who, cache.len, x.size(1), spec.context_length));
}

// rows [p0, p0 + t) of head h's block in a [NH, cap, HS] cache <- columns
// [h HS, (h+1) HS) of src [t, ld].
void append_heads(Tensor& cache, const Tensor& src, int64_t p0, int64_t NH, int64_t HS) {
    Tensor s = src.is_contiguous() ? src : src.clone();
    int64_t t = s.numel() / (NH * HS), cap = cache.size(1);
    for (int64_t h = 0; h < NH; ++h)
        for (int64_t i = 0; i < t; ++i)
            std::memcpy(cache.data() + (h * cap + p0 + i) * HS, s.data() + i * NH * HS + h * HS,
                        HS * sizeof(float));
}

}  // namespace

Tensor causal_attention_weights_at(const Tensor& scores, const Tensor& mask, int64_t p0, int64_t head_dim,
                                   const Dropout& drop) {
    int64_t t = scores.size(-2), T = scores.shape().back();
    Tensor m = mask.slice(0, p0, p0 + t).slice(1, 0, T);
    Tensor masked = masked_fill(scores, m, -std::numeric_limits<float>::infinity());
    Tensor w = softmax(div(masked, std::sqrt(static_cast<float>(head_dim)))).named("weights");
    return drop.forward(w);
}

// The default for a variant without a cache of its own: keep the inputs x of
// every past token (k [capacity, C]) and recompute the whole window [1, T, C]
// with the variant's forward, returning its last t rows. Correct for any causal
// variant (row i of a causal forward reads rows <= i only), at O(T^2) per step
// instead of O(T): the optional capability degrades to slower, never to failure.
Tensor Attention::forward_cached(const Tensor& x, AttentionCache& cache) {
    LabelScope sc(local_name());  // as Layer::operator() does for forward
    check_step(x, cache, spec_, "Attention");
    int64_t t = x.size(1), C = spec_.d_in, p0 = cache.len, T = p0 + t;
    if (!cache.k.defined()) cache.k = Tensor::zeros({spec_.context_length, C});
    Tensor xc = x.is_contiguous() ? x : x.clone();
    std::memcpy(cache.k.data() + p0 * C, xc.data(), static_cast<size_t>(t * C) * sizeof(float));
    cache.len = T;
    Tensor y = forward(cache.k.slice(0, 0, T).view({1, T, C}));  // [1, T, d_out]
    return y.slice(1, p0, T).clone();
}

Tensor MultiHeadAttention::forward_cached(const Tensor& x, AttentionCache& cache) {
    if (spec_.uniform) return Attention::forward_cached(x, cache);  // no keys to cache
    LabelScope sc(local_name());  // as Layer::operator() does for forward
    check_step(x, cache, spec_, "MultiHeadAttention");
    int64_t t = x.size(1), NH = spec_.num_heads, HS = spec_.head_dim(), R = spec_.qk_head_dim(),
            p0 = cache.len, T = p0 + t;
    if (!cache.k.defined()) {
        cache.k = Tensor::zeros({NH, spec_.context_length, R});  // keys are R wide (--qk-dim)
        cache.v = Tensor::zeros({NH, spec_.context_length, HS});
    }
    append_heads(cache.k, (*W_key)(x), p0, NH, R);
    append_heads(cache.v, (*W_value)(x), p0, NH, HS);
    cache.len = T;
    Tensor q = (*W_query)(x).view({1, t, NH, R}).transpose(1, 2);   // [1, NH, t, R]
    Tensor k = cache.k.slice(1, 0, T), v = cache.v.slice(1, 0, T);  // [NH, T, R], [NH, T, HS]
    Tensor scores = matmul(q, k.transpose(1, 2)).named("scores");   // [1, NH, t, T]
    Tensor w = causal_attention_weights_at(scores, mask, p0, HS, *dropout);
    Tensor ctx = matmul(w, v).transpose(1, 2).reshape({1, t, spec_.d_out}).named("context");
    return out_proj ? (*out_proj)(ctx) : ctx;
}

Tensor MHA_alt1::forward_cached(const Tensor& x, AttentionCache& cache) {
    LabelScope sc(local_name());  // as Layer::operator() does for forward
    check_step(x, cache, spec_, "MHA_alt1");
    int64_t t = x.size(1), C = spec_.d_in, NH = spec_.num_heads, HS = spec_.head_dim(), p0 = cache.len,
            T = p0 + t;
    if (!cache.k.defined()) {
        cache.k = Tensor::zeros({spec_.context_length, C});
        cache.v = Tensor::zeros({NH, spec_.context_length, HS});
    }
    Tensor xc = x.is_contiguous() ? x : x.clone();
    std::memcpy(cache.k.data() + p0 * C, xc.data(), static_cast<size_t>(t * C) * sizeof(float));
    Tensor xs = cache.k.slice(0, 0, T);  // [T, C]: every x_j the scores need
    std::vector<Tensor> outs;
    for (int64_t h = 0; h < NH; ++h) {
        CA_alt1& head = *heads[h];
        Tensor vh = (*head.W_value)(x);  // [1, t, HS]
        std::memcpy(cache.v.data() + (h * spec_.context_length + p0) * HS, vh.data(),
                    static_cast<size_t>(t * HS) * sizeof(float));
        Tensor scores = matmul((*head.S)(x), xs.transpose(0, 1)).named("scores");  // [1, t, T]
        Tensor w = causal_attention_weights_at(scores, head.mask, p0, HS, *head.dropout);
        Tensor vs = cache.v.slice(0, h, h + 1).slice(1, 0, T);  // [1, T, HS]
        outs.push_back(matmul(w, vs).named("context"));
    }
    cache.len = T;
    Tensor ctx = cat(outs, -1).named("context");
    return out_proj ? (*out_proj)(ctx) : ctx;
}

}  // namespace tg::nn
