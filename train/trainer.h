// The book's train_model_simple (Chapter 5) with the extras a user expects:
//   for each epoch: for each batch: zero_grad, forward, cross_entropy, backward,
//   [clip], optimizer step; every eval_freq steps (from step 0) the mean loss over
//   eval_iter batches of each loader in eval mode with no tape, printed as
//   "Ep 1 (Step 000000): Train loss 9.781, Val loss 9.933"; after each epoch a
//   greedy sample of 50 tokens from the start context.
// Every optimizer step appends a row to <out>/metrics.csv (flushed). A checkpoint
// holds model, optimizer, generator state and data position, so --resume
// continues bit-identically, and the run's clock and counts (elapsed and
// training seconds, steps), so a resumed run's figures continue the original's.
// Between steps the loop asks should_stop() (SIGINT/SIGTERM) and judges each
// step's loss and gradient norm with judge_step() (train/run_guard.h).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "models/gpt.h"

namespace tg::train {

struct TrainOptions {
    models::GPTConfig config = models::preset("gpt2-124m");
    std::string data_path = "data/the-verdict.txt";
    std::string vocab_dir = "data";  // encoder.json and vocab.bpe
    int64_t epochs = 10;
    int64_t max_steps = -1;  // stop after this many optimizer steps in all (-1: no limit)
    int64_t batch_size = 2;
    std::string optimizer = "adamw";  // adamw | sgd
    double lr = 4e-4, weight_decay = 0.1, momentum = 0.0;
    int64_t warmup = 0;            // > 0: linear warmup from min_lr, then cosine to min_lr
    std::optional<double> min_lr;  // set: cosine decay to it over the run
    double clip = 0;               // > 0: clip the global gradient norm
    uint64_t seed = 123;
    int64_t eval_freq = 5, eval_iter = 5;
    bool shuffle = true;
    double train_ratio = 0.9;
    std::string init_from, save_path, resume_path, out_dir;
    std::string start_context = "Every effort moves you";
    int64_t sample_tokens = 50;
    bool quiet = false;    // no progress line, no book lines on stdout
    bool profile = false;  // print a per-op profile of one training step
    bool detect_anomaly = false;
    int64_t probe_every = 0;  // gradient dynamics probe interval (0: off)
    // Reliability (issue 11): see train/run_guard.h and train/run_dir.h.
    int64_t save_every = 0;        // > 0: rewrite save_path atomically every N steps
    std::string on_nan = "stop";   // a non-finite loss/grad norm: stop | skip
    bool allow_nonfinite = false;  // load --init-from/--resume weights holding NaN/Inf
    bool overwrite = false;        // replace a finished run in out_dir
    // compare: record the train loader's orders (mha) and replay them (alt1).
    std::vector<std::vector<int64_t>>* record_orders = nullptr;
    const std::vector<std::vector<int64_t>>* replay_orders = nullptr;
};

struct EvalPoint {
    int64_t epoch, step, tokens_seen;
    double train_loss, val_loss;
};

struct TrainResult {
    int64_t num_parameters = 0;
    int64_t steps = 0, tokens_seen = 0;
    double seconds = 0, train_seconds = 0;  // wall time; time inside optimizer steps
    std::vector<EvalPoint> evals;
    std::vector<double> step_losses;   // the training batch loss of every step
    std::vector<std::string> samples;  // one per finished epoch
    double probe_seconds = 0;
    std::string book_lines;  // the printed "Ep .. (Step ..)" lines
    // How the run ended early, if it did: "SIGINT"/"SIGTERM" (stopped cleanly
    // between steps) or "nonfinite" (diverged; `diverged` says where).
    std::string stopped_by, diverged;
    int64_t skipped_steps = 0;  // --on-nan skip
    std::string saved_path;     // the checkpoint on disk at the end, if any
    int64_t saved_step = -1;    // the last step it holds
};

TrainResult train_model(const TrainOptions& opt);

}  // namespace tg::train
