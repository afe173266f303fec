// The book's GPT (Chapter 4): token and position embeddings, n_layers
// pre-LayerNorm transformer blocks, final norm, output head without bias.
//   ids [B, T] -> logits [B, T, V]
#pragma once

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
    std::optional<bool> out_proj;   // default: on for mha, off for alt1 (as the discussion)

    bool has_out_proj() const { return out_proj.value_or(attention == "mha"); }
    std::string describe() const;
};

// "gpt2-124m": the book's GPT_CONFIG_124M with context 256. "tiny": a small
// config whose training step takes well under a second. "small": the sweep
// model for corpora (context 128, 4 layers of width 128, 4 heads; ~14M
// parameters, 12.9M of them the GPT-2-vocabulary embeddings), a few hundred
// steps in about a minute on 2 cores. It is not GPT-2 "small" (that is gpt2-124m).
GPTConfig preset(const std::string& name);
std::vector<std::string> preset_names();

class TransformerBlock : public nn::Module {
public:
    explicit TransformerBlock(const GPTConfig& cfg);
    Tensor forward(const Tensor& x);
    std::shared_ptr<nn::Attention> att;
    std::shared_ptr<nn::FeedForward> ff;
    std::shared_ptr<nn::LayerNorm> norm1, norm2;
    std::shared_ptr<nn::Dropout> drop_shortcut;
};

class GPTModel : public nn::Module {
public:
    explicit GPTModel(const GPTConfig& cfg);
    Tensor forward(const Ids& ids);  // ids [B, T] -> logits [B, T, V]
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
