// Pretrained GPT-2 (OpenAI's 124M / 355M / 774M / 1558M) from the Hugging Face
// `model.safetensors` layout, mapped exactly as the book's load_weights_into_gpt
// (Chapter 5.5):
//   wte.weight [V, C]          -> tok_emb.weight, and out_head.weight (a copy, untied)
//   wpe.weight [N, C]          -> pos_emb.weight
//   h.{i}.ln_1.weight / .bias  -> trf_blocks.{i}.norm1.scale / .shift (ln_2 -> norm2)
//   h.{i}.attn.c_attn.weight [C, 3C] (Conv1D: [in, out]; columns q | k | v)
//                              -> W_query / W_key / W_value.weight = column block^T
//   h.{i}.attn.c_attn.bias [3C] -> the three biases
//   h.{i}.attn.c_proj          -> att.out_proj (weight transposed)
//   h.{i}.mlp.c_fc, .c_proj    -> ff.layers.0, ff.layers.2 (weights transposed)
//   ln_f.weight / .bias        -> final_norm.scale / .shift
// Names may carry a "transformer." prefix; the causal-mask buffers some files hold
// (h.{i}.attn.bias [1, 1, N, N], h.{i}.attn.masked_bias) and a tied lm_head.weight
// are ignored. A missing or wrong-shaped tensor is refused with its name.
//
// Into MHA_alt1 (the merged form), head h of width HS gets the same attention
// weights: with Wq_h, Wk_h the head's rows [HS, C] and bq_h its query bias,
//   S_h = Wk_h^T Wq_h   [C, C],   S_h.bias = Wk_h^T bq_h   [C]
// since q_i . k_j = x_i Wq_h^T Wk_h x_j^T + bq_h Wk_h x_j^T + (terms constant in j),
// and softmax over j ignores terms constant in j. W_value and out_proj map as in mha
// (so alt1 needs out_proj and qkv_bias on).
//
// The file is memory-mapped (MappedSafeTensors): each tensor is copied once, from
// the page cache into the model's parameter.
#pragma once

#include <optional>
#include <string>

#include "models/gpt.h"
#include "models/safetensors.h"

namespace tg::models {

// True when the file holds wte.weight (with or without "transformer.").
bool is_gpt2_hf(const MappedSafeTensors& st);

// The config a file needs: vocab and context from wte/wpe, emb_dim, n_layers by
// counting h.{i}; n_heads from the matching OpenAI size (gpt2-*-hf presets) unless
// given; qkv_bias on; drop_rate 0.1 as the book's config.
GPTConfig gpt2_hf_config(const MappedSafeTensors& st, std::optional<int64_t> n_heads = {},
                         const std::string& attention = "mha");

// Copy the file's weights into `model` (mha or alt1), checking every shape.
void load_gpt2_hf(GPTModel& model, const MappedSafeTensors& st);

// Weights for `train --init-from FILE`: a Hugging Face GPT-2 file (recognised by
// its wte.weight) goes through load_gpt2_hf, anything else is a checkpoint or
// state_dict with the book's names (load_model_weights).
void load_init_weights(GPTModel& model, const std::string& path);

// The inverse mapping for an mha model (tests, random pretrained-shaped files):
// out_head is not written (GPT-2 ties it to wte). `prefix` e.g. "transformer.";
// mask_buffers adds the h.{i}.attn.bias buffers some files carry.
void save_gpt2_hf(const std::string& path, const GPTModel& model, const std::string& prefix = "",
                  bool mask_buffers = false);

}  // namespace tg::models
