// mha -> alt1 with the same function: the merged form of a trained (or
// pretrained) factored attention, for `tapegrad convert --to alt1`, the fork of
// `tapegrad compare --fork-at` and the Hugging Face loader (models/gpt2_hf.h).
//
// Head h of mha with query/key width R (qk_dim, HS by default) scores
//   q_i . k_j = (x_i Wq_h^T + bq_h)(Wk_h x_j^T + bk_h)
//             = x_i Wq_h^T Wk_h x_j^T + bq_h Wk_h x_j^T + (terms constant in j)
// with Wq_h, Wk_h [R, C], and softmax over j ignores terms constant in j. A head
// of alt1 scores S_h(x_i) x_j^T = x_i S_h.weight^T x_j^T + S_h.bias x_j^T, so
//   S_h.weight = Wk_h^T Wq_h   [C, C],   S_h.bias = Wk_h^T bq_h   [C]
// gives the same attention weights (both scale by 1/sqrt(HS)). Head h's values
// are rows [h HS, (h+1) HS) of W_value; out_proj, embeddings, norms,
// feed-forward and the output head are copied unchanged, so alt1 needs out_proj
// on and has qkv_bias exactly when mha had it (the value bias).
#pragma once

#include <memory>

#include "models/gpt.h"

namespace tg::models {

// One factor of a head, Wq_h or Wk_h [R, C], as it lies in memory: rows of a
// row-major weight [*, C] (a Linear's [out, in]; columns = false), or columns of
// a block [C, *] (a Hugging Face Conv1D weight [in, out]; columns = true). p
// points at the head's first element, ld is the leading dimension.
struct HeadFactor {
    const float* p;
    int64_t ld;
    bool columns;
};

// S = Wk^T Wq [C, C] (row-major, ld C) and, when bq (R contiguous floats) and
// S_bias are given, S_bias = Wk^T bq [C]. Two GEMMs, no transposed copies.
void merge_query_key(const HeadFactor& q, const HeadFactor& k, const float* bq, int64_t C, int64_t R,
                     float* S, float* S_bias);

// The variant this converter writes: a source variant offers it through its
// traits (nn::AttentionTraits::converts_to, mha's), which is what every caller
// checks, never the source's name.
inline constexpr const char* kConvertTarget = "alt1";
// True when `attention`'s traits say it converts to kConvertTarget (mha).
bool converts_to_alt1(const std::string& attention);

// The alt1 config computing the same function as `mha`: attention alt1,
// out_proj on, qk_dim unset, everything else as in `mha`. Refuses (naming what
// is expected) a config that is not mha or has no out_proj.
GPTConfig alt1_config_of(const GPTConfig& mha, bool allow_no_out_proj = false);

// A new alt1 model holding `mha`'s function (see above). The global generator
// is left as it was (building the model draws an init that is then overwritten).
// `init` is what the alt1 config records as its initialisation ("product" when
// build_model makes the product-init arm this way).
std::unique_ptr<GPTModel> convert_to_alt1(const GPTModel& mha, const std::string& init = "default");

// `tapegrad convert IN OUT --to alt1`: IN is a checkpoint tapegrad wrote for an
// mha model with out_proj (its tapegrad.config says so; anything else is refused
// with the reason); OUT, written atomically, holds the alt1 weights and config,
// plus `extra_metadata`. Optimizer state and the training position are not
// carried over: AdamW's moments are per element of Wq and Wk, and S = Wk^T Wq
// has no elements they map to (the second moments do not transform through the
// product), so OUT is a starting point (--init-from), not a --resume point.
// Returns the alt1 config.
GPTConfig convert_checkpoint_to_alt1(const std::string& in, const std::string& out,
                                     bool allow_nonfinite = false);

}  // namespace tg::models
