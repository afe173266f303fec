// The flags `train` and `compare` share: the model (a preset plus overrides) and
// the training options, bound to one TrainFlags and turned into TrainOptions by
// finish() after parsing.
#pragma once

#include <optional>
#include <string>

#include "models/gpt.h"
#include "train/trainer.h"

namespace CLI {
class App;
}

namespace tg::cli {

// GPTConfig overrides: applied on top of --preset after parsing.
struct ConfigFlags {
    std::string preset = "gpt2-124m";
    std::optional<int64_t> vocab_size, context_length, emb_dim, n_heads, n_layers;
    std::optional<float> drop_rate;
    std::optional<bool> qkv_bias, out_proj;
    std::string attention = "mha";
    models::GPTConfig resolve() const;
};

struct TrainFlags {
    ConfigFlags cfg;
    train::TrainOptions opt;
    int threads = 2;
    bool no_shuffle = false;
    double min_lr = -1;
};

void add_train_flags(CLI::App* app, TrainFlags& f, bool with_attention);

// The options of one run: the resolved config, the defaults that depend on the
// repository, and the thread count (set here, before any work).
train::TrainOptions finish(TrainFlags& f);

}  // namespace tg::cli
