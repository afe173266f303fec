#include "models/convert.h"

#include <fmt/format.h>

#include <cstring>
#include <map>

#include "core/blas.h"
#include "core/random.h"
#include "models/checkpoint.h"

namespace tg::models {

// A = Wk^T [C, R]: stored as columns it is A itself, stored as rows it is A^T.
// B = Wq [R, C]: stored as rows it is B, as columns B^T.
void merge_query_key(const HeadFactor& q, const HeadFactor& k, const float* bq, int64_t C, int64_t R,
                     float* S, float* S_bias) {
    bool ta = !k.columns, tb = q.columns;
    gemm(ta, tb, C, C, R, 1.0f, k.p, k.ld, q.p, q.ld, 0.0f, S, C);
    if (bq && S_bias) gemm(ta, false, C, 1, R, 1.0f, k.p, k.ld, bq, 1, 0.0f, S_bias, 1);
}

bool converts_to_alt1(const std::string& attention) {
    const nn::AttentionTraits* t = nn::find_attention_traits(attention);
    return t && t->converts_to == kConvertTarget;
}

GPTConfig alt1_config_of(const GPTConfig& mha, bool allow_no_out_proj) {
    if (!converts_to_alt1(mha.attention))
        throw Error("tapegrad: convert --to alt1: the input must be an mha model, this one is attention '" +
                    mha.attention + "' (its traits have no converter to alt1)");
    if (mha.uniform_attention)
        throw Error("tapegrad: convert --to alt1: the input has uniform attention (no query or key)");
    // Without out_proj both forms concatenate the heads' outputs, so alt1 without
    // out_proj holds the same function (the product init uses that); convert and
    // the fork keep to the documented pair, mha with out_proj -> alt1 with it.
    if (!mha.has_out_proj() && !allow_no_out_proj)
        throw Error(
            "tapegrad: convert --to alt1: the input mha model has no out_proj; the same function in alt1 "
            "needs the heads' outputs mixed by out_proj (train mha with --out-proj true)");
    GPTConfig c = mha;
    c.attention = kConvertTarget;
    c.out_proj = mha.has_out_proj();
    c.qk_dim.reset();
    c.init_gain = 1.0f;
    return c;
}

namespace {

void copy_rows(const Tensor& src, int64_t row0, Tensor& dst) {
    int64_t width = src.dim() == 2 ? src.size(1) : 1;
    std::memcpy(dst.data(), src.data() + row0 * width, static_cast<size_t>(dst.numel()) * sizeof(float));
}

void convert_attention(const nn::MultiHeadAttention& a, nn::MHA_alt1& b) {
    const nn::AttentionSpec& s = a.spec();
    int64_t C = s.d_in, R = s.qk_head_dim(), HS = s.head_dim();
    for (size_t h = 0; h < b.heads.size(); ++h) {
        nn::CA_alt1& head = *b.heads[h];
        int64_t r0 = static_cast<int64_t>(h) * R, v0 = static_cast<int64_t>(h) * HS;
        HeadFactor q{a.W_query->weight.data() + r0 * C, C, false};
        HeadFactor k{a.W_key->weight.data() + r0 * C, C, false};
        const float* bq = a.W_query->bias.defined() ? a.W_query->bias.data() + r0 : nullptr;
        merge_query_key(q, k, bq, C, R, head.S->weight.data(),
                        head.S->bias.defined() ? head.S->bias.data() : nullptr);
        copy_rows(a.W_value->weight, v0, head.W_value->weight);
        if (head.W_value->bias.defined()) copy_rows(a.W_value->bias, v0, head.W_value->bias);
    }
    if (!a.out_proj) return;
    std::memcpy(b.out_proj->weight.data(), a.out_proj->weight.data(),
                static_cast<size_t>(a.out_proj->weight.numel()) * sizeof(float));
    std::memcpy(b.out_proj->bias.data(), a.out_proj->bias.data(),
                static_cast<size_t>(a.out_proj->bias.numel()) * sizeof(float));
}

}  // namespace

std::unique_ptr<GPTModel> convert_to_alt1(const GPTModel& mha, const std::string& init) {
    GPTConfig cfg = alt1_config_of(mha.config(), init == "product");
    cfg.init = init;
    NoGradGuard ng;
    std::string rng = default_generator().state();
    auto out = std::make_unique<GPTModel>(cfg);
    default_generator().set_state(rng);
    // Everything outside attention has the same name and shape in both.
    std::map<std::string, Tensor> dst;
    for (auto& [n, t] : out->state_dict()) dst[n] = t;
    for (auto& [n, t] : mha.state_dict()) {
        if (n.find(".att.") != std::string::npos) continue;
        Tensor& d = dst.at(n);
        if (d.shape() != t.shape())
            throw Error(fmt::format("tapegrad: convert: '{}' is {} in mha but {} in alt1", n,
                                    shape_str(t.shape()), shape_str(d.shape())));
        std::memcpy(d.data(), t.data(), static_cast<size_t>(t.numel()) * sizeof(float));
    }
    for (size_t i = 0; i < mha.trf_blocks.size(); ++i) {
        auto* a = dynamic_cast<const nn::MultiHeadAttention*>(mha.trf_blocks[i]->att.get());
        auto* b = dynamic_cast<nn::MHA_alt1*>(out->trf_blocks[i]->att.get());
        if (!a || !b) throw Error("tapegrad: convert: block " + std::to_string(i) + " is not mha");
        convert_attention(*a, *b);
    }
    return out;
}

GPTConfig convert_checkpoint_to_alt1(const std::string& in, const std::string& out, bool allow_nonfinite) {
    GPTConfig cfg;
    std::unique_ptr<GPTModel> mha;
    {
        SafeTensors st = read_safetensors(in);
        cfg = checkpoint_config(st, in);
        try {
            alt1_config_of(cfg);
        } catch (const Error& e) {
            throw Error(std::string(e.what()) + " ('" + in + "')");
        }
        mha = std::make_unique<GPTModel>(cfg);
        load_model_weights(*mha, st, in, allow_nonfinite);
    }
    auto alt1 = convert_to_alt1(*mha);
    save_checkpoint(out, *alt1, nullptr, {{"tapegrad.converted_from", config_to_json(cfg)}});
    return alt1->config();
}

}  // namespace tg::models
