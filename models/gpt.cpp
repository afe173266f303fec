#include "models/gpt.h"

#include <fmt/format.h>

namespace tg::models {

std::string GPTConfig::describe() const {
    return fmt::format(
        "vocab {} context {} emb {} heads {} layers {} drop {} qkv_bias {} attention {} out_proj {}",
        vocab_size, context_length, emb_dim, n_heads, n_layers, drop_rate, qkv_bias, attention,
        has_out_proj());
}

GPTConfig preset(const std::string& name) {
    GPTConfig c;
    if (name == "gpt2-124m") return c;
    if (name == "tiny") {
        c.context_length = 64;
        c.emb_dim = 64;
        c.n_heads = 4;
        c.n_layers = 2;
        return c;
    }
    if (name == "small") {
        c.context_length = 128;
        c.emb_dim = 128;
        c.n_heads = 4;
        c.n_layers = 4;
        return c;
    }
    throw Error("tapegrad: unknown preset '" + name + "' (known: gpt2-124m, tiny, small)");
}

std::vector<std::string> preset_names() { return {"gpt2-124m", "tiny", "small"}; }

TransformerBlock::TransformerBlock(const GPTConfig& cfg) {
    nn::AttentionSpec spec{cfg.emb_dim,   cfg.emb_dim,  cfg.context_length, cfg.n_heads,
                           cfg.drop_rate, cfg.qkv_bias, cfg.has_out_proj()};
    att = register_module("att", nn::make_attention(cfg.attention, spec));
    ff = register_module("ff", std::make_shared<nn::FeedForward>(cfg.emb_dim));
    norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(cfg.emb_dim));
    norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(cfg.emb_dim));
    drop_shortcut = register_module("drop_shortcut", std::make_shared<nn::Dropout>(cfg.drop_rate));
}

// x + drop(att(norm1(x))), then x + drop(ff(norm2(x))).
Tensor TransformerBlock::forward(const Tensor& x) {
    auto sc = scope();
    Tensor h = add(x, drop_shortcut->forward(att->forward(norm1->forward(x)))).named("residual1");
    return add(h, drop_shortcut->forward(ff->forward(norm2->forward(h)))).named("residual2");
}

GPTModel::GPTModel(const GPTConfig& cfg) : cfg_(cfg) {
    if (cfg.vocab_size <= 0 || cfg.context_length <= 0 || cfg.emb_dim <= 0 || cfg.n_heads <= 0 ||
        cfg.n_layers < 0)
        throw Error("tapegrad: GPTModel: every dimension must be positive: " + cfg.describe());
    if (cfg.emb_dim % cfg.n_heads != 0)
        throw Error(fmt::format("tapegrad: GPTModel: emb_dim {} is not divisible by n_heads {}", cfg.emb_dim,
                                cfg.n_heads));
    if (!(cfg.drop_rate >= 0 && cfg.drop_rate < 1))
        throw Error(fmt::format("tapegrad: GPTModel: drop_rate {} is outside [0, 1)", cfg.drop_rate));
    tok_emb = register_module("tok_emb", std::make_shared<nn::Embedding>(cfg.vocab_size, cfg.emb_dim));
    pos_emb = register_module("pos_emb", std::make_shared<nn::Embedding>(cfg.context_length, cfg.emb_dim));
    drop_emb = register_module("drop_emb", std::make_shared<nn::Dropout>(cfg.drop_rate));
    for (int64_t i = 0; i < cfg.n_layers; ++i)
        trf_blocks.push_back(
            register_module("trf_blocks." + std::to_string(i), std::make_shared<TransformerBlock>(cfg)));
    final_norm = register_module("final_norm", std::make_shared<nn::LayerNorm>(cfg.emb_dim));
    out_head = register_module("out_head", std::make_shared<nn::Linear>(cfg.emb_dim, cfg.vocab_size, false));
    label_parameters();
}

Tensor GPTModel::forward(const Ids& ids) {
    if (ids.shape.size() != 2)
        throw Error("tapegrad: GPTModel::forward: ids must be [B, T], got " + shape_str(ids.shape));
    int64_t T = ids.shape[1];
    if (T > cfg_.context_length)
        throw Error(fmt::format("tapegrad: GPTModel::forward: {} tokens exceed context_length {}", T,
                                cfg_.context_length));
    Ids pos{{T}, std::vector<int64_t>(static_cast<size_t>(T))};
    for (int64_t t = 0; t < T; ++t) pos.data[t] = t;
    Tensor x = add(tok_emb->forward(ids), pos_emb->forward(pos)).named("embeddings");  // [B, T, C] + [T, C]
    x = drop_emb->forward(x);
    for (auto& blk : trf_blocks) x = blk->forward(x);
    return out_head->forward(final_norm->forward(x)).named("logits");
}

}  // namespace tg::models
