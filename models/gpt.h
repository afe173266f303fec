// The book's GPT (Chapter 4): token and position embeddings, n_layers
// pre-LayerNorm transformer blocks, final norm, output head without bias.
//   ids [B, T] -> logits [B, T, V]
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "nn/attention.h"

namespace tg::models {

struct GPTConfig {
    int64_t vocab_size = 50257;
    int64_t context_length = 256;
    int64_t emb_dim = 768;
    int64_t n_heads = 12;
    int64_t n_layers = 12;
    float drop_rate = 0.1f;
    bool qkv_bias = false;
    std::string attention = "mha";  // "mha" | "alt1" | a registered extension
    std::optional<bool> out_proj;   // default: the variant's (nn::AttentionTraits::out_proj)
    // mha only: the width R of each head's query and key (W_query, W_key: C -> NH R),
    // so M_h = Wq_h^T Wk_h has rank <= R. Default HS = emb_dim / n_heads (the book);
    // R = emb_dim gives a full-rank factored M, alt1's function class. Scores stay
    // scaled by 1/sqrt(HS) whatever R is.
    std::optional<int64_t> qk_dim;
    // Initialisation arms of the answer's study (docs/results.md), recorded in
    // checkpoints only when not the default:
    //   init "product" (alt1): each head's S_h = Wk_h^T Wq_h and its bias Wk_h^T bq_h
    //        from the factors that mha with qk_dim = emb_dim (and the same out_proj)
    //        draws from the same generator, so the two start as the same function
    //        and the generator is left where that mha model leaves it (build_model).
    //   init_gain g (mha): W_query and W_key scaled by g after their default init,
    //        so M_h = Wq_h^T Wk_h scales by g^2. g = 3^(1/4) ~ 1.316 matches, in
    //        expectation, the Frobenius norm and the score sd of alt1's default S_h
    //        at rank C (entries U(-a, a), a = 1/sqrt(C): ||S||^2 = C/3 against
    //        ||Wq^T Wk||^2 = C/9).
    //   uniform_attention (mha): no query and key; every score is 0, so each token
    //        attends uniformly to its prefix. The control that bounds how much any
    //        query/key change can matter.
    std::string init = "default";
    float init_gain = 1.0f;
    bool uniform_attention = false;

    bool has_out_proj() const { return out_proj.value_or(traits().out_proj); }
    // The variant's registry entry; a name nothing registered reads as a variant
    // without capabilities (so a checkpoint of a missing extension still describes itself).
    const nn::AttentionTraits& traits() const;
    int64_t qk_head_dim() const { return qk_dim.value_or(n_heads > 0 ? emb_dim / n_heads : 0); }
    std::string describe() const;
};

class GPTModel;
// The model cfg asks for, initialised as cfg.init says: GPTModel(cfg) for the
// default init; for init "product", the factored mha twin drawn from the
// generator and converted to alt1 (models/convert.h). The global generator is
// seeded by the caller (the book seeds right before building the model).
std::unique_ptr<GPTModel> build_model(const GPTConfig& cfg);

// "gpt2-124m": the book's GPT_CONFIG_124M with context 256. "tiny": a small
// config whose training step takes well under a second. "gpt2-small-hf",
// "gpt2-medium-hf", "gpt2-large-hf", "gpt2-xl-hf": OpenAI's pretrained shapes
// (124M/355M/774M/1558M) as the book loads them, context 1024 and qkv_bias on.
// "small": the sweep
// model for corpora (context 128, 4 layers of width 128, 4 heads; ~14M
// parameters, 12.9M of them the GPT-2-vocabulary embeddings), a few hundred
// steps in about a minute on 2 cores. It is not GPT-2 "small" (that is gpt2-124m).
GPTConfig preset(const std::string& name);
std::vector<std::string> preset_names();
// The pretrained preset with this width and depth, if any (a file carries no n_heads).
std::optional<std::string> gpt2_preset_for(int64_t emb_dim, int64_t n_layers);

// The KV cache of a whole model: one AttentionCache per block (nn/attention.h).
struct KVCache {
    std::vector<nn::AttentionCache> layers;
    int64_t len() const { return layers.empty() ? 0 : layers.front().len; }
    void reset() {
        for (auto& l : layers) l.reset();
    }
};

class TransformerBlock : public nn::Layer<TransformerBlock> {
public:
    explicit TransformerBlock(const GPTConfig& cfg);
    Tensor forward(const Tensor& x);
    Tensor forward_cached(const Tensor& x, nn::AttentionCache& cache);
    std::shared_ptr<nn::Attention> att;
    std::shared_ptr<nn::FeedForward> ff;
    std::shared_ptr<nn::LayerNorm> norm1, norm2;
    std::shared_ptr<nn::Dropout> drop_shortcut;
};

class GPTModel : public nn::Layer<GPTModel> {
public:
    explicit GPTModel(const GPTConfig& cfg);
    Tensor forward(const Ids& ids);  // ids [B, T] -> logits [B, T, V]
    // Decoding with a KV cache: ids [1, t] are the tokens at positions cache.len() ..
    // cache.len() + t - 1; returns the last position's logits [1, 1, V]. Eval mode
    // under NoGradGuard; cache.len() + t must fit the context.
    Tensor forward_cached(const Ids& ids, KVCache& cache);
    const GPTConfig& config() const { return cfg_; }

    std::shared_ptr<nn::Embedding> tok_emb, pos_emb;
    std::shared_ptr<nn::Dropout> drop_emb;
    std::vector<std::shared_ptr<TransformerBlock>> trf_blocks;
    std::shared_ptr<nn::LayerNorm> final_norm;
    std::shared_ptr<nn::Linear> out_head;

private:
    GPTConfig cfg_;
};

}  // namespace tg::models
