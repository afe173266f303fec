#include "models/gpt2_hf.h"

#include <fmt/format.h>

#include <cstring>
#include <set>

#include "core/parallel.h"
#include "models/checkpoint.h"
#include "models/convert.h"

namespace tg::models {
namespace {

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
    throw Error("tapegrad: GPT-2 file '" + path + "': " + why);
}

std::string name_prefix(const MappedSafeTensors& st) {
    if (st.find("wte.weight")) return "";
    if (st.find("transformer.wte.weight")) return "transformer.";
    refuse(st.path(),
           "no tensor 'wte.weight' (nor 'transformer.wte.weight'): not the Hugging Face GPT-2 layout");
}

// dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols: a transposed copy
// between row-major blocks with leading dimensions. 32 x 32 tiles keep both sides
// in cache; tiles of rows split over threads (disjoint outputs).
void transpose_copy(const float* src, int64_t lds, float* dst, int64_t ldd, int64_t rows, int64_t cols) {
    constexpr int64_t B = 32;
    int64_t tiles = (rows + B - 1) / B;
    parallel_for(tiles, 4, [&](int64_t t0, int64_t t1) {
        for (int64_t r0 = t0 * B; r0 < std::min(rows, t1 * B); r0 += B)
            for (int64_t c0 = 0; c0 < cols; c0 += B)
                for (int64_t r = r0; r < std::min(rows, r0 + B); ++r)
                    for (int64_t c = c0; c < std::min(cols, c0 + B); ++c) dst[c * ldd + r] = src[r * lds + c];
    });
}

// Reads tensors by their Hugging Face name, checking shapes; remembers what it used.
class Reader {
public:
    explicit Reader(const MappedSafeTensors& st) : st_(st), prefix_(name_prefix(st)) {}

    const float* get(const std::string& name, const Shape& want) {
        const TensorEntry* e = st_.find(prefix_ + name);
        if (!e)
            refuse(st_.path(), fmt::format("tensor '{}' is missing (the model needs {})", prefix_ + name,
                                           shape_str(want)));
        if (e->shape != want)
            refuse(st_.path(), fmt::format("tensor '{}' has shape {} but the model needs {}", e->name,
                                           shape_str(e->shape), shape_str(want)));
        used_.insert(e->name);
        scratch_.emplace_back();
        return st_.f32(*e, scratch_.back());
    }

    // Anything left that is neither used nor a known extra is an error.
    void check_all_used() const {
        for (const TensorEntry& e : st_.header().entries) {
            if (used_.count(e.name)) continue;
            std::string n = e.name.rfind(prefix_, 0) == 0 ? e.name.substr(prefix_.size()) : e.name;
            bool mask =
                n.rfind("h.", 0) == 0 && (ends_with(n, ".attn.bias") || ends_with(n, ".attn.masked_bias"));
            if (mask || e.name == "lm_head.weight") continue;
            refuse(st_.path(),
                   "unexpected tensor '" + e.name + "' (more layers than the model, or not GPT-2?)");
        }
    }
    void release() { scratch_.clear(); }

private:
    static bool ends_with(const std::string& s, const std::string& t) {
        return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
    }
    const MappedSafeTensors& st_;
    std::string prefix_;
    std::set<std::string> used_;
    std::vector<std::vector<float>> scratch_;
};

void copy_into(Tensor& dst, const float* src) {
    std::memcpy(dst.data(), src, static_cast<size_t>(dst.numel()) * sizeof(float));
}

// A Linear's weight [out, in] from a Conv1D block [in, ld] starting at column col0.
void linear_from_conv1d(nn::Linear& lin, const float* w, int64_t ld, int64_t col0) {
    int64_t out = lin.weight.size(0), in = lin.weight.size(1);
    transpose_copy(w + col0, ld, lin.weight.data(), in, in, out);
}

void need(bool ok, const std::string& path, const std::string& what) {
    if (!ok) refuse(path, what);
}

void load_mha(nn::MultiHeadAttention& att, const float* w, const float* b, int64_t C,
              const std::string& path) {
    need(att.W_query->bias.defined(), path, "GPT-2 has query/key/value biases: the model needs qkv_bias on");
    need(att.spec().qk_head_dim() == att.spec().head_dim(), path,
         "GPT-2's queries and keys are head-size wide: the model needs the default qk_dim (no --qk-dim)");
    linear_from_conv1d(*att.W_query, w, 3 * C, 0);
    linear_from_conv1d(*att.W_key, w, 3 * C, C);
    linear_from_conv1d(*att.W_value, w, 3 * C, 2 * C);
    std::memcpy(att.W_query->bias.data(), b, C * sizeof(float));
    std::memcpy(att.W_key->bias.data(), b + C, C * sizeof(float));
    std::memcpy(att.W_value->bias.data(), b + 2 * C, C * sizeof(float));
}

// Head h: S = Wk_h^T Wq_h and S.bias = Wk_h^T bq_h (see the header; the one merge
// of models/convert.h, shared with `tapegrad convert --to alt1`). In the Conv1D
// block, Wq_h^T is columns [h HS, (h+1) HS) and Wk_h^T columns C + the same.
void load_alt1(nn::MHA_alt1& att, const float* w, const float* b, int64_t C, const std::string& path) {
    for (size_t h = 0; h < att.heads.size(); ++h) {
        nn::CA_alt1& head = *att.heads[h];
        int64_t HS = head.head_dim, q0 = static_cast<int64_t>(h) * HS;
        need(head.S->bias.defined(), path, "GPT-2 has query/key/value biases: the model needs qkv_bias on");
        // Wq_h^T, Wk_h^T: [C, HS] column blocks of leading dim 3C (models/convert.h).
        merge_query_key({w + q0, 3 * C, true}, {w + C + q0, 3 * C, true}, b + q0, C, HS,
                        head.S->weight.data(), head.S->bias.data());
        linear_from_conv1d(*head.W_value, w, 3 * C, 2 * C + q0);
        std::memcpy(head.W_value->bias.data(), b + 2 * C + q0, HS * sizeof(float));
    }
}

}  // namespace

bool is_gpt2_hf(const MappedSafeTensors& st) {
    return st.find("wte.weight") || st.find("transformer.wte.weight");
}

GPTConfig gpt2_hf_config(const MappedSafeTensors& st, std::optional<int64_t> n_heads,
                         const std::string& attention) {
    std::string p = name_prefix(st);
    const TensorEntry* wte = st.find(p + "wte.weight");
    const TensorEntry* wpe = st.find(p + "wpe.weight");
    if (wte->shape.size() != 2) refuse(st.path(), "'" + wte->name + "' is not a matrix");
    if (!wpe || wpe->shape.size() != 2)
        refuse(st.path(), "tensor '" + p + "wpe.weight' is missing or not a matrix");
    int64_t layers = 0;
    while (st.find(fmt::format("{}h.{}.ln_1.weight", p, layers))) ++layers;
    GPTConfig c;
    int64_t C = wte->shape[1];
    if (auto name = gpt2_preset_for(C, layers)) c = preset(*name);
    if (n_heads)
        c.n_heads = *n_heads;
    else if (!gpt2_preset_for(C, layers))
        refuse(st.path(),
               fmt::format("emb_dim {} with {} layers is none of OpenAI's GPT-2 sizes; give n_heads "
                           "(--n-heads)",
                           C, layers));
    c.vocab_size = wte->shape[0];
    c.context_length = wpe->shape[0];
    c.emb_dim = C;
    c.n_layers = layers;
    c.qkv_bias = true;
    c.attention = attention;
    c.out_proj = true;
    return c;
}

void load_gpt2_hf(GPTModel& m, const MappedSafeTensors& st) {
    const GPTConfig& cfg = m.config();
    const std::string& path = st.path();
    int64_t C = cfg.emb_dim, V = cfg.vocab_size, N = cfg.context_length;
    Reader rd(st);
    const float* wte = rd.get("wte.weight", {V, C});
    copy_into(m.tok_emb->weight, wte);
    copy_into(m.out_head->weight, wte);  // the book: out_head.weight = wte
    copy_into(m.pos_emb->weight, rd.get("wpe.weight", {N, C}));
    auto norm = [&](nn::LayerNorm& ln, const std::string& name) {
        copy_into(ln.scale, rd.get(name + ".weight", {C}));
        copy_into(ln.shift, rd.get(name + ".bias", {C}));
    };
    for (size_t i = 0; i < m.trf_blocks.size(); ++i) {
        TransformerBlock& blk = *m.trf_blocks[i];
        std::string h = "h." + std::to_string(i) + ".";
        norm(*blk.norm1, h + "ln_1");
        norm(*blk.norm2, h + "ln_2");
        const float* w = rd.get(h + "attn.c_attn.weight", {C, 3 * C});
        const float* b = rd.get(h + "attn.c_attn.bias", {3 * C});
        std::shared_ptr<nn::Linear> out_proj;
        if (auto* mha = dynamic_cast<nn::MultiHeadAttention*>(blk.att.get())) {
            load_mha(*mha, w, b, C, path);
            out_proj = mha->out_proj;
        } else if (auto* alt1 = dynamic_cast<nn::MHA_alt1*>(blk.att.get())) {
            load_alt1(*alt1, w, b, C, path);
            out_proj = alt1->out_proj;
        } else {
            refuse(path, "GPT-2 weights load into attention mha or alt1, not '" + cfg.attention + "'");
        }
        need(out_proj != nullptr, path,
             "GPT-2 has an attention output projection: the model needs out_proj on");
        linear_from_conv1d(*out_proj, rd.get(h + "attn.c_proj.weight", {C, C}), C, 0);
        copy_into(out_proj->bias, rd.get(h + "attn.c_proj.bias", {C}));
        linear_from_conv1d(*blk.ff->up, rd.get(h + "mlp.c_fc.weight", {C, 4 * C}), 4 * C, 0);
        copy_into(blk.ff->up->bias, rd.get(h + "mlp.c_fc.bias", {4 * C}));
        linear_from_conv1d(*blk.ff->down, rd.get(h + "mlp.c_proj.weight", {4 * C, C}), C, 0);
        copy_into(blk.ff->down->bias, rd.get(h + "mlp.c_proj.bias", {C}));
        rd.release();
    }
    norm(*m.final_norm, "ln_f");
    rd.check_all_used();
}

void load_init_weights(GPTModel& model, const std::string& path) {
    {
        MappedSafeTensors st(path);
        if (is_gpt2_hf(st)) {
            load_gpt2_hf(model, st);
            return;
        }
    }
    load_model_weights(model, read_safetensors(path), path);
}

void save_gpt2_hf(const std::string& path, const GPTModel& m, const std::string& prefix, bool mask_buffers) {
    NoGradGuard ng;
    const GPTConfig& cfg = m.config();
    int64_t C = cfg.emb_dim;
    std::vector<std::pair<std::string, Tensor>> out;
    auto put = [&](const std::string& name, const Tensor& t) { out.emplace_back(prefix + name, t); };
    // [out, in] -> Conv1D [in, out] columns [col0, col0 + out) of a block with leading dim ld.
    auto to_conv1d = [](const nn::Linear& lin, Tensor& dst, int64_t ld, int64_t col0) {
        int64_t o = lin.weight.size(0), in = lin.weight.size(1);
        transpose_copy(lin.weight.data(), in, dst.data() + col0, ld, o, in);
    };
    auto conv1d = [&](const nn::Linear& lin) {
        Tensor t = Tensor::empty({lin.weight.size(1), lin.weight.size(0)});
        to_conv1d(lin, t, lin.weight.size(0), 0);
        return t;
    };
    put("wte.weight", m.tok_emb->weight);
    put("wpe.weight", m.pos_emb->weight);
    for (size_t i = 0; i < m.trf_blocks.size(); ++i) {
        const TransformerBlock& blk = *m.trf_blocks[i];
        auto* att = dynamic_cast<const nn::MultiHeadAttention*>(blk.att.get());
        if (!att || !att->out_proj || !att->W_query->bias.defined() ||
            att->spec().qk_head_dim() != att->spec().head_dim())
            throw Error("tapegrad: save_gpt2_hf: needs attention mha with qkv_bias, out_proj and the default "
                        "qk_dim");
        std::string h = "h." + std::to_string(i) + ".";
        put(h + "ln_1.weight", blk.norm1->scale);
        put(h + "ln_1.bias", blk.norm1->shift);
        Tensor w = Tensor::empty({C, 3 * C});
        to_conv1d(*att->W_query, w, 3 * C, 0);
        to_conv1d(*att->W_key, w, 3 * C, C);
        to_conv1d(*att->W_value, w, 3 * C, 2 * C);
        put(h + "attn.c_attn.weight", w);
        put(h + "attn.c_attn.bias",
            cat({att->W_query->bias, att->W_key->bias, att->W_value->bias}, 0).detach());
        put(h + "attn.c_proj.weight", conv1d(*att->out_proj));
        put(h + "attn.c_proj.bias", att->out_proj->bias);
        put(h + "ln_2.weight", blk.norm2->scale);
        put(h + "ln_2.bias", blk.norm2->shift);
        put(h + "mlp.c_fc.weight", conv1d(*blk.ff->up));
        put(h + "mlp.c_fc.bias", blk.ff->up->bias);
        put(h + "mlp.c_proj.weight", conv1d(*blk.ff->down));
        put(h + "mlp.c_proj.bias", blk.ff->down->bias);
        if (mask_buffers) {
            // HF's buffer is tril(ones) (1 = may attend), [1, 1, N, N].
            Tensor mask = Tensor::empty({1, 1, cfg.context_length, cfg.context_length});
            for (int64_t r = 0; r < cfg.context_length; ++r)
                for (int64_t c = 0; c < cfg.context_length; ++c)
                    mask.data()[r * cfg.context_length + c] = c <= r ? 1.0f : 0.0f;
            put(h + "attn.bias", mask);
        }
    }
    put("ln_f.weight", m.final_norm->scale);
    put("ln_f.bias", m.final_norm->shift);
    write_safetensors(path, out, {{"format", "pt"}});
}

}  // namespace tg::models
