// The flags `train` and `compare` share: the model (a preset plus overrides) and
// the training options, bound to one TrainFlags and turned into TrainOptions by
// finish() after parsing.
#pragma once

#include <optional>
#include <string>

#include "models/gpt.h"
#include "train/loop/trainer.h"

namespace CLI {
class App;
class Option;
class Validator;
}  // namespace CLI

namespace tg::cli {

// GPTConfig overrides: applied on top of --preset after parsing.
struct ConfigFlags {
    std::string preset = "gpt2-124m";
    std::optional<int64_t> vocab_size, context_length, emb_dim, n_heads, n_layers, qk_dim;
    std::optional<float> drop_rate;
    std::optional<bool> qkv_bias, out_proj;
    std::string attention = "mha";
    std::string init = "default";  // the study's arms (models/gpt.h): default | product
    float init_gain = 1.0f;
    bool uniform_attention = false;
    models::GPTConfig resolve() const;
};

struct TrainFlags {
    ConfigFlags cfg;
    train::TrainOptions opt;
    int threads = 0;                     // 0: not given, dist::default_threads()
    CLI::Option* threads_opt = nullptr;  // given? (under mpirun the default is per rank)
    bool no_shuffle = false;
    double min_lr = -1;
    std::string seed = "123";  // parsed strictly by finish(): "-1" and 2^64 must not wrap
};

// An integer flag with a lower bound, said in plain words. (CLI11's
// PositiveNumber states its range as a 309-digit double.)
CLI::Validator at_least(int64_t lo);
// A finite number > 0 (CLI11's PositiveNumber says so in 309 digits).
CLI::Validator positive_number();

// Every subcommand's thread count: `given` (> 0) or, when --threads was not
// given (0), dist::default_threads(): OMP_NUM_THREADS when set, else the cores the
// process may use (per rank under mpirun). Sets the one pool and returns the count.
int use_threads(int given);
inline constexpr const char* kThreadsDefault =
    " (default: OMP_NUM_THREADS when set, else the cores this process may use)";

void add_train_flags(CLI::App* app, TrainFlags& f, bool with_attention);

// The options of one run: the resolved config, the defaults that depend on the
// repository, and the thread count (set here, before any work).
train::TrainOptions finish(TrainFlags& f);

}  // namespace tg::cli
