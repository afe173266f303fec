// The book's train_model_simple (Chapter 5) with the extras a user expects:
//   for each epoch: for each batch: zero_grad, forward, cross_entropy, backward,
//   [clip], optimizer step; every eval_freq steps (from step 0) the mean loss over
//   eval_iter batches of each loader in eval mode with no tape, printed as
//   "Ep 1 (Step 000000): Train loss 9.781, Val loss 9.933"; after each epoch a
//   greedy sample of 50 tokens from the start context.
// The loop is the Trainer class (train_step() is one optimizer step); evaluation,
// metrics, progress, samples, profile and probe are observers attached to it
// (train/observers/standard.h). Every optimizer step appends a row to
// <out>/metrics.csv (flushed). A checkpoint
// holds model, optimizer, generator state and data position, so --resume
// continues bit-identically, and the run's clock and counts (elapsed and
// training seconds, steps), so a resumed run's figures continue the original's.
// Between steps the loop asks should_stop() (SIGINT/SIGTERM) and judges each
// step's loss and gradient norm with judge_step() (train/run/stop_policy.h).
// Under `mpirun -np N` the same loop runs on every rank with PyTorch DDP's
// semantics (train/dist/grad_reducer.h): each rank takes its rows of the global batch, the
// gradients are averaged in buckets during backward, and every rank steps
// identically; rank 0 alone writes checkpoints (its weights are every rank's).
#pragma once

#include <chrono>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/storage.h"
#include "models/gpt.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "train/data/shard_loader.h"
#include "train/data/vocab_map.h"
#include "train/data/text_loader.h"
#include "train/dist/grad_reducer.h"
#include "train/loop/observer.h"
#include "train/run/wall_time.h"
#include "train/tokenizer/tokenizer.h"

namespace tg::models {
struct SafeTensors;
}

namespace tg::train {

// <out>/run_id: the identity of the run that writes the folder (TrainResult::run_id).
std::string run_id_path(const std::string& out_dir);

struct TrainOptions {
    models::GPTConfig config = models::preset("gpt2-124m");
    std::string data_path = "data/the-verdict.txt";
    std::string vocab_dir = "data";  // encoder.json and vocab.bpe
    int64_t epochs = 10;
    int64_t max_length = 0;  // training window, the book's max_length (0: the model's context_length)
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
    // init_from: a checkpoint, a state_dict with the book's names, or a Hugging Face
    // GPT-2 model.safetensors (recognised by its names; models/gpt2_hf.h).
    std::string init_from, save_path, resume_path, out_dir;
    std::string start_context = "Every effort moves you";
    int64_t sample_tokens = 50;
    // The per-epoch samples' decoding: "off" the book's uncached loop, "on" the KV
    // cache (same tokens, models/generate.h; the default since both book runs showed
    // all 10 samples equal, docs/pretrained.md, "KV cache"), "check" both, counting any difference.
    std::string sample_kv_cache = "on";
    bool quiet = false;    // no progress line, no book lines on stdout
    bool profile = false;  // print a per-op profile of one training step
    bool detect_anomaly = false;
    // --memory-saving: let go of what backward does not read, dropout masks as
    // bits, gelu's tanh recomputed (core/memory.h); the numbers are the same either way.
    bool memory_saving = true;
    int64_t probe_every = 0;  // gradient dynamics probe interval (0: off)
    // --probe-pairs K: at each probed step the top K (query, key) pairs of every
    // head's G and -dM, and their aggregates, into <out>/pairs.csv (0: off;
    // train/study/pairs.h).
    int64_t probe_pairs = 0;
    // --final-eval full: after the last step, the loss over every window of the
    // validation split (not eval_iter batches), per document into
    // <out>/final_eval.csv (train/observers/final_eval.h).
    bool final_eval_full = false;
    // --dump-tape: the tape of one step (default the run's first), before backward.
    std::string dump_tape;
    std::optional<int64_t> dump_tape_step;
    // Reliability (issue 11): see train/run/stop_policy.h and train/run/run_dir.h.
    int64_t save_every = 0;        // > 0: rewrite save_path atomically every N steps
    std::string on_nan = "stop";   // a non-finite loss/grad norm: stop | skip
    bool allow_nonfinite = false;  // load --init-from/--resume weights holding NaN/Inf
    bool overwrite = false;        // replace a finished run in out_dir
    // compare --fork-at: end run() once this many steps are done in all (-1: off),
    // without shortening the schedule as max_steps would; and --resume without the
    // checkpoint's optimizer state (fresh moments and step count).
    int64_t stop_after = -1;
    bool fresh_optimizer = false;
    // Data parallelism under mpirun (train/dist/grad_reducer.h): gradient bucket size in MB.
    double bucket_mb = 25;
    // compare: record the train loader's orders (mha) and replay them (alt1).
    std::vector<std::vector<int64_t>>* record_orders = nullptr;
    const std::vector<std::vector<int64_t>>* replay_orders = nullptr;
    // Called once, when this invocation's first optimizer step has finished:
    // `--overwrite` removes the old run only then (train/run/run_dir.h).
    std::function<void()> on_first_step;
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
    std::vector<double> step_losses;  // the training batch loss of every step
    // One per finished epoch: the text (decoded bytes) and its exact token ids.
    std::vector<std::string> samples;
    std::vector<std::vector<int64_t>> sample_ids;
    // --sample-kv-cache check: epochs whose cached sample equalled / differed from the uncached one.
    int64_t sample_cache_equal = 0, sample_cache_differ = 0;
    double probe_seconds = 0;
    // --final-eval full: mean loss per target token over the whole validation
    // split, and the tokens it covers (NaN, 0: not evaluated).
    double full_val_loss = std::numeric_limits<double>::quiet_NaN();
    int64_t full_val_tokens = 0;
    // This process's wall time by part (train/run/wall_time.h): the Trainer fills
    // startup .. metrics and total (constructor to the end of run()); the command
    // adds what lies around it (preflight, summary, report) and its own total.
    WallTime wall;
    std::string book_lines;  // the printed "Ep .. (Step ..)" lines
    // The run's identity: made when it starts, carried by its checkpoints
    // (tapegrad.run_id) and its --out folder (<out>/run_id), so that --resume
    // into another run's folder is refused.
    std::string run_id;
    // How the run ended early, if it did: "SIGINT"/"SIGTERM" (stopped cleanly
    // between steps) or "nonfinite" (diverged; `diverged` says where).
    std::string stopped_by, diverged;
    int64_t skipped_steps = 0;  // --on-nan skip
    std::string saved_path;     // the checkpoint on disk at the end, if any
    int64_t saved_step = -1;    // the last step it holds
    // Under mpirun -np N > 1 (train/dist/grad_reducer.h): the ranks, the gradient buckets, and
    // over this process's steps how many bucket reductions started while
    // backward was still walking the tape (the overlap; summary.json).
    int world = 1;
    int64_t dp_buckets = 0, dp_steps = 0, dp_launched_in_backward = 0;
};

// Where a run stands; saved in checkpoints for a bit-identical resume.
struct Position {
    int64_t epoch = 0, next_batch = 0, global_step = -1, tokens_seen = 0, replay_index = 0;
    std::vector<int64_t> order;  // the current epoch's window order
    bool in_epoch = false;
    // The run's clock and counts before this process (a resumed run continues them).
    double elapsed_s = 0, train_seconds = 0;
    int64_t skipped_steps = 0;
};

// The training loop as a library piece. The constructor builds the data, the
// model (seeded as the book does), the optimizer and the schedule, and applies
// --resume; train_step() is one optimizer step and nothing else; run() is the
// epoch loop. Everything else attaches as a StepObserver (train/loop/observer.h);
// train_model() attaches the standard ones for a TrainOptions.
class Trainer {
public:
    explicit Trainer(const TrainOptions& o);
    Trainer(const Trainer&) = delete;
    Trainer& operator=(const Trainer&) = delete;

    // Observers are not owned and are called in the order added.
    void add_observer(StepObserver* obs) { observers_.push_back(obs); }

    struct StepStats {
        double loss, grad_norm;
        bool skipped = false;  // non-finite, --on-nan skip: no update
    };
    // zero_grad, forward, cross_entropy, backward, [clip], optimizer step on one
    // batch, telling the observers each phase (not end_step: run() does, once the
    // step is counted). A non-finite loss or gradient norm goes to judge_step()
    // (train/run/stop_policy.h): the step is skipped, or the run stops (run() returns
    // with result().stopped_by == "nonfinite").
    StepStats train_step(const Batch& b);

    // The epochs from the current position until `epochs`, `max_steps`, a stop
    // signal (should_stop(), asked between steps) or divergence; writes the
    // --save checkpoint every save_every steps and at the end (never of
    // diverged weights).
    TrainResult run();
    void save(const std::string& path);
    // The metadata save() writes beside the weights: the training position
    // (tapegrad.train: data position, generator state, clock) and the optimizer
    // type. The fork writes it with converted weights.
    // tapegrad.history holds what summary.json reports of the steps so far
    // (samples, their ids, book lines, evaluations), so a resumed run's summary
    // keeps them; tapegrad.run_id the run's identity.
    std::map<std::string, std::string> checkpoint_metadata() const;

    // For observers and tests.
    const TrainOptions& options() const { return o_; }
    models::GPTModel& model() { return *model_; }
    optim::Optimizer& optimizer() { return *opt_; }
    const Tokenizer& tokenizer() const { return tok_; }
    // The book pipeline's loaders (--data FILE); null with --data DIR.
    // The book's text loaders, or null when --data is a shard directory (then
    // shards() holds the loaders): never a reference to nothing.
    DataLoader* train_loader() { return train_loader_.get(); }
    DataLoader* val_loader() { return val_loader_.get(); }
    // The token shards of --data DIR; null for a text file.
    const ShardCorpus* shards() const { return shards_.get(); }
    const WindowDataset* val_dataset() const { return val_ds_.get(); }  // the text pipeline's
    // The corpus's compact vocabulary (train/data/vocab_map.h), or null: GPT-2's ids.
    const VocabMap* vocab_map() const { return vocab_ ? &*vocab_ : nullptr; }
    int64_t batches_per_epoch() const;
    const Position& position() const { return pos_; }
    // The batch train_step() is working on (this rank's rows), null between steps:
    // what the probe's pair decomposition reads the tokens from.
    const Batch* current_batch() const { return batch_; }
    // Under mpirun -np N (N > 1): the gradient reducer, else null.
    GradReducer* reducer() { return reducer_.get(); }
    TrainResult& result() { return res_; }
    int64_t total_steps() const { return total_steps_; }
    double elapsed() const;  // the run's clock: seconds since the constructor, plus a resumed run's
    // The next iteration order of the train loader: drawn from the default
    // generator as PyTorch's shuffling DataLoader does, recorded or replayed
    // for compare.
    std::vector<int64_t> next_train_order();

private:
    void resume(const std::string& path);
    void restore_history(const models::SafeTensors& st, const std::string& path);
    void check_run_folder(const std::string& checkpoint) const;
    void loop();
    void save_every();
    // judge_step() on a non-finite value: true to skip the step; throws to stop.
    bool handle_nonfinite(double loss, double gnorm, int64_t step);

    // First member, so destroyed last: once the model, optimizer state and
    // loaders have parked their buffers, they go back to the system
    // (pool_release_all, core/storage.h), and a next run of other shapes starts
    // from what is live, not from this run's pool.
    struct PoolReturn {
        PoolReturn() = default;
        PoolReturn(const PoolReturn&) = delete;
        PoolReturn& operator=(const PoolReturn&) = delete;
        ~PoolReturn() { pool_release_all(); }
    } pool_return_;
    TrainOptions o_;
    std::chrono::steady_clock::time_point t0_;
    Tokenizer tok_;
    std::unique_ptr<WindowDataset> train_ds_, val_ds_;
    std::unique_ptr<DataLoader> train_loader_, val_loader_;
    std::unique_ptr<ShardCorpus> shards_;
    std::optional<VocabMap> vocab_;
    std::unique_ptr<models::GPTModel> model_;
    std::unique_ptr<optim::Optimizer> opt_;
    std::unique_ptr<optim::WarmupCosine> schedule_;
    std::unique_ptr<GradReducer> reducer_;
    std::vector<StepObserver*> observers_;
    Position pos_;
    TrainResult res_;
    int64_t total_steps_ = 0;
    const Batch* batch_ = nullptr;  // set inside train_step()
};

// A Trainer with the standard observers for `opt` (evaluation and book lines,
// metrics.csv, progress line, per-epoch samples, profile, dynamics probe), run.
TrainResult train_model(const TrainOptions& opt);

}  // namespace tg::train
