// Checkpoints: one safetensors file holding
//   - the model's state_dict under the book's names (loads into PyTorch's GPTModel
//     after dropping the "optimizer." entries; see tools/torch_gpt.py),
//   - optionally the optimizer's state as "optimizer.<kind>.<param name>",
//   - metadata: "tapegrad.config" (GPTConfig as JSON), "tapegrad.optimizer"
//     (type and scalars) and any caller entries (training position, RNG state).
// A file exported from PyTorch (state_dict only, no metadata) loads as weights.
#pragma once

#include <map>
#include <string>

#include "models/gpt.h"
#include "models/safetensors.h"
#include "optim/optimizer.h"

namespace tg::models {

std::string config_to_json(const GPTConfig& cfg);
GPTConfig config_from_json(const std::string& s);

void save_checkpoint(const std::string& path, const GPTModel& model, const optim::Optimizer* opt = nullptr,
                     const std::map<std::string, std::string>& extra_metadata = {});

// The config saved with a tapegrad checkpoint; throws if the file has none.
GPTConfig checkpoint_config(const SafeTensors& st, const std::string& path);

// What differs between two configs, field by field ("n_heads 4 in the file, 2
// asked"); empty when they agree.
std::string config_diff(const GPTConfig& file, const GPTConfig& asked);

// The first NaN/Inf among the model's (non-"optimizer.") tensors, as
// "'name' has nan at flat index i", or empty when every weight is finite.
std::string first_nonfinite_weight(const SafeTensors& st);

// Load the model's parameters (all required, shapes checked) and any buffers;
// entries under "optimizer." are skipped; any other unknown name is an error.
// A file whose weights hold NaN/Inf (a diverged run) is refused unless
// allow_nonfinite (the CLI's --allow-nonfinite).
void load_model_weights(GPTModel& model, const SafeTensors& st, const std::string& path,
                        bool allow_nonfinite = false);

// Load optimizer state saved by save_checkpoint (same optimizer type required).
void load_optimizer_state(optim::Optimizer& opt, const std::string& type, const SafeTensors& st,
                          const std::string& path);

}  // namespace tg::models
