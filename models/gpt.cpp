#include "models/gpt.h"

#include <fmt/format.h>

#include "core/memory.h"
#include "models/convert.h"

#include <cmath>

namespace tg::models {

const nn::AttentionTraits& GPTConfig::traits() const {
    static const nn::AttentionTraits none;  // immutable: no factory, no capability
    const nn::AttentionTraits* t = nn::find_attention_traits(attention);
    return t ? *t : none;
}

std::string GPTConfig::describe() const {
    std::string s = fmt::format(
        "vocab {} context {} emb {} heads {} layers {} drop {} qkv_bias {} attention {} out_proj {}",
        vocab_size, context_length, emb_dim, n_heads, n_layers, drop_rate, qkv_bias, attention,
        has_out_proj());
    if (qk_dim) s += fmt::format(" qk_dim {}", *qk_dim);
    if (init != "default") s += " init " + init;
    if (init_gain != 1.0f) s += fmt::format(" init_gain {}", init_gain);
    if (uniform_attention) s += " uniform_attention";
    return s;
}

namespace {
// OpenAI's GPT-2 sizes as the book's model_configs: context 1024, qkv_bias on.
struct Gpt2Size {
    const char* name;
    int64_t emb_dim, n_layers, n_heads;
};
constexpr Gpt2Size kGpt2Sizes[] = {{"gpt2-small-hf", 768, 12, 12},
                                   {"gpt2-medium-hf", 1024, 24, 16},
                                   {"gpt2-large-hf", 1280, 36, 20},
                                   {"gpt2-xl-hf", 1600, 48, 25}};
}  // namespace

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
    for (const Gpt2Size& s : kGpt2Sizes)
        if (name == s.name) {
            c.context_length = 1024;
            c.emb_dim = s.emb_dim;
            c.n_layers = s.n_layers;
            c.n_heads = s.n_heads;
            c.qkv_bias = true;
            return c;
        }
    std::string known;
    for (auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error("tapegrad: unknown preset '" + name + "' (known: " + known + ")");
}

std::vector<std::string> preset_names() {
    std::vector<std::string> names = {"gpt2-124m", "tiny", "small"};
    for (const Gpt2Size& s : kGpt2Sizes) names.push_back(s.name);
    return names;
}

std::optional<std::string> gpt2_preset_for(int64_t emb_dim, int64_t n_layers) {
    for (const Gpt2Size& s : kGpt2Sizes)
        if (s.emb_dim == emb_dim && s.n_layers == n_layers) return std::string(s.name);
    return std::nullopt;
}

TransformerBlock::TransformerBlock(const GPTConfig& cfg) {
    nn::AttentionSpec spec{cfg.emb_dim,   cfg.emb_dim,  cfg.context_length, cfg.n_heads,
                           cfg.drop_rate, cfg.qkv_bias, cfg.has_out_proj(), cfg.qk_dim.value_or(0),
                           cfg.uniform_attention};
    att = register_module("att", nn::make_attention(cfg.attention, spec));
    ff = register_module("ff", std::make_shared<nn::FeedForward>(cfg.emb_dim));
    norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(cfg.emb_dim));
    norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(cfg.emb_dim));
    drop_shortcut = register_module("drop_shortcut", std::make_shared<nn::Dropout>(cfg.drop_rate));
}

// x + drop(att(norm1(x))), then x + drop(ff(norm2(x))).
// The layer norms' outputs are freed once attention and the feed-forward have
// read them, and refilled in backward from the norms' saved xhat (core/memory.h).
Tensor TransformerBlock::forward(const Tensor& x) {
    Tensor n1 = (*norm1)(x);
    Tensor a = (*att)(n1);
    recompute_in_backward(n1);
    Tensor h = add(x, (*drop_shortcut)(a)).named("residual1");
    Tensor n2 = (*norm2)(h);
    Tensor f = (*ff)(n2);
    recompute_in_backward(n2);
    return add(h, (*drop_shortcut)(f)).named("residual2");
}

Tensor TransformerBlock::forward_cached(const Tensor& x, nn::AttentionCache& cache) {
    LabelScope sc(local_name());  // as Layer::operator() does for forward
    Tensor h = add(x, att->forward_cached((*norm1)(x), cache)).named("residual1");
    return add(h, (*ff)((*norm2)(h))).named("residual2");
}

GPTModel::GPTModel(const GPTConfig& cfg) : cfg_(cfg) {
    if (cfg.vocab_size <= 0 || cfg.context_length <= 0 || cfg.emb_dim <= 0 || cfg.n_heads <= 0 ||
        cfg.n_layers < 0)
        throw Error("tapegrad: GPTModel: every dimension must be positive: " + cfg.describe());
    if (cfg.emb_dim % cfg.n_heads != 0)
        throw Error(fmt::format("tapegrad: GPTModel: emb_dim {} is not divisible by n_heads {}", cfg.emb_dim,
                                cfg.n_heads));
    if (cfg.qk_dim && (*cfg.qk_dim < 1 || *cfg.qk_dim > cfg.emb_dim))
        throw Error(
            fmt::format("tapegrad: GPTModel: qk_dim (--qk-dim) must be in 1 .. emb_dim {} (M = Wq^T Wk "
                        "has rank <= emb_dim whatever R is), got {}",
                        cfg.emb_dim, *cfg.qk_dim));
    const nn::AttentionTraits& traits = nn::attention_traits(cfg.attention);
    if (cfg.qk_dim && !traits.qk_factors)
        throw Error("tapegrad: GPTModel: qk_dim (--qk-dim) sets the query/key width of attention mha; '" +
                    cfg.attention + "' has no such factors (alt1's S_h is a full C x C matrix)");
    if (cfg.init != "default" && cfg.init != "product")
        throw Error("tapegrad: GPTModel: init must be default or product, got '" + cfg.init + "'");
    if (cfg.init == "product" && traits.product_of.empty())
        throw Error("tapegrad: GPTModel: init product builds alt1's S_h from mha factors; attention '" +
                    cfg.attention + "' is not alt1");
    if ((cfg.init_gain != 1.0f || cfg.uniform_attention) && !traits.qk_factors)
        throw Error("tapegrad: GPTModel: init_gain and uniform_attention act on mha's W_query and W_key; "
                    "attention '" + cfg.attention + "' has none");
    if (!(cfg.init_gain > 0 && std::isfinite(cfg.init_gain)))
        throw Error(fmt::format("tapegrad: GPTModel: init_gain must be a finite number > 0, got {}", cfg.init_gain));
    if (cfg.uniform_attention && (cfg.init_gain != 1.0f || cfg.qk_dim))
        throw Error("tapegrad: GPTModel: uniform_attention has no query or key to scale or size");
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
    if (cfg.init_gain != 1.0f) {
        NoGradGuard ng;
        for (auto& blk : trf_blocks) {
            auto* a = dynamic_cast<nn::MultiHeadAttention*>(blk->att.get());
            if (!a || !a->W_query)  // qk_factors promised W_query and W_key
                throw Error("tapegrad: GPTModel: init_gain scales MultiHeadAttention's W_query and W_key; "
                            "attention '" + cfg.attention + "' is not one");
            for (nn::Linear* l : {a->W_query.get(), a->W_key.get()}) {
                float* w = l->weight.data();
                for (int64_t i = 0; i < l->weight.numel(); ++i) w[i] *= cfg.init_gain;
            }
        }
    }
}

std::unique_ptr<GPTModel> build_model(const GPTConfig& cfg) {
    // The variant's traits say which factored variant its product init is drawn
    // as (alt1: mha); without one GPTModel refuses init product by name.
    const std::string& of = nn::attention_traits(cfg.attention).product_of;
    if (cfg.init != "product" || of.empty()) return std::make_unique<GPTModel>(cfg);
    if (nn::attention_traits(of).converts_to != cfg.attention)
        throw Error("tapegrad: build_model: init product draws '" + cfg.attention + "' as '" + of +
                    "', which has no converter to it (nn::AttentionTraits::converts_to)");
    GPTConfig twin = cfg;  // the factored model with the same function class (rank C)
    twin.attention = of;
    twin.init = "default";
    twin.qk_dim = cfg.emb_dim;
    GPTModel factored(twin);
    return convert_to_alt1(factored, "product");  // leaves the generator where `factored` did
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
    Tensor x = add((*tok_emb)(ids), (*pos_emb)(pos)).named("embeddings");  // [B, T, C] + [T, C]
    x = (*drop_emb)(x);
    for (auto& blk : trf_blocks) x = (*blk)(x);
    return (*out_head)((*final_norm)(x)).named("logits");
}

}  // namespace tg::models

namespace tg::models {

// Embeddings at positions p0 .. p0 + t - 1, the blocks through their caches, and
// the output head on the last row only (the one a decoding step samples from).
Tensor GPTModel::forward_cached(const Ids& ids, KVCache& cache) {
    if (ids.shape.size() != 2 || ids.shape[0] != 1 || ids.shape[1] < 1)
        throw Error("tapegrad: GPTModel::forward_cached: ids must be [1, t], got " + shape_str(ids.shape));
    if (is_training()) throw Error("tapegrad: GPTModel::forward_cached: decoding needs eval mode");
    int64_t t = ids.shape[1], p0 = cache.len();
    if (p0 + t > cfg_.context_length)
        throw Error(fmt::format("tapegrad: GPTModel::forward_cached: {} cached + {} new tokens exceed "
                                "context_length {} (crop and reset the cache)",
                                p0, t, cfg_.context_length));
    cache.layers.resize(trf_blocks.size());
    Ids pos{{t}, std::vector<int64_t>(static_cast<size_t>(t))};
    for (int64_t i = 0; i < t; ++i) pos.data[i] = p0 + i;
    Tensor x = add((*tok_emb)(ids), (*pos_emb)(pos)).named("embeddings");
    for (size_t b = 0; b < trf_blocks.size(); ++b) x = trf_blocks[b]->forward_cached(x, cache.layers[b]);
    Tensor last = x.slice(1, t - 1, t);
    return (*out_head)((*final_norm)(last)).named("logits");
}

}  // namespace tg::models
