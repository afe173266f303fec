#include "train/loop/trainer.h"

#include <fmt/format.h>

#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "core/memory.h"
#include "models/checkpoint.h"
#include "models/gpt2_hf.h"
#include "optim/adamw.h"
#include "optim/sgd.h"
#include "train/dist/mpi.h"
#include "train/io/json_text.h"
#include "train/io/read_file.h"
#include "train/observers/standard.h"
#include "train/run/preflight.h"
#include "train/run/run_dir.h"
#include "train/run/stop_policy.h"

namespace tg::train {
namespace {

using json = nlohmann::json;

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainOptions& o, const models::GPTModel& model) {
    std::vector<optim::ParamRef> refs;
    for (auto& [n, t] : model.named_parameters()) refs.push_back({n, t});
    if (o.optimizer == "adamw")
        return std::make_unique<optim::AdamW>(
            refs, optim::AdamWOptions{.lr = o.lr, .weight_decay = o.weight_decay});
    if (o.optimizer == "sgd")
        return std::make_unique<optim::SGD>(
            refs, optim::SGDOptions{.lr = o.lr, .momentum = o.momentum, .weight_decay = o.weight_decay});
    throw Error("tapegrad: unknown optimizer '" + o.optimizer + "' (adamw or sgd)");
}

// Thrown by handle_nonfinite() to leave the loop of a diverged run.
struct DivergedStop {};

double since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string num(double v) { return std::isnan(v) ? std::string("nan") : fmt::format("{}", v); }  // not "-nan"

// 64 random bits in hex: a run's identity (collisions are not a concern at 2^-64).
std::string new_run_id() {
    std::random_device rd;
    uint64_t v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    return fmt::format("{:016x}", v);
}

// An evaluation as JSON and back; a NaN loss is null in JSON.
json eval_to_json(const EvalPoint& e) {
    auto n = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
    return json::array({e.epoch, e.step, e.tokens_seen, n(e.train_loss), n(e.val_loss)});
}
EvalPoint eval_from_json(const json& j) {
    auto n = [](const json& v) { return v.is_null() ? std::nan("") : v.get<double>(); };
    return {j.at(0).get<int64_t>(), j.at(1).get<int64_t>(), j.at(2).get<int64_t>(), n(j.at(3)), n(j.at(4))};
}

}  // namespace

std::string run_id_path(const std::string& out_dir) { return out_dir + "/run_id"; }

Trainer::Trainer(const TrainOptions& o)
    : o_(o), t0_(std::chrono::steady_clock::now()),
      tok_(o.vocab_dir + "/encoder.json", o.vocab_dir + "/vocab.bpe") {
    set_memory_saving(o.memory_saving);
    const auto& cfg = o.config;
    int64_t T = o.max_length > 0 ? o.max_length : cfg.context_length;
    if (T > cfg.context_length)
        throw Error(fmt::format("tapegrad: --max-length {} exceeds the model's context_length {}", T,
                                cfg.context_length));
    if (std::filesystem::is_directory(o.data_path)) {
        // Token shards: memory-mapped, seeded order by (seed, epoch), no text to tokenize.
        std::ostringstream notes;  // manifest, checksums, ids < vocab; said once, by rank 0
        check_corpus(o.data_path, cfg.vocab_size, notes);
        if (dist::is_root()) std::cerr << notes.str();
        shards_ = std::make_unique<ShardCorpus>(o.data_path, T, o.batch_size, o.shuffle, o.seed);
        vocab_ = VocabMap::from_manifest(o.data_path);
        if (vocab_) {
            shards_->eot_id = vocab_->to_dense(Tokenizer::kEndOfText);
            if (cfg.vocab_size != vocab_->size())
                throw Error(fmt::format("tapegrad: --data '{}' holds a compact vocabulary of {} ids, but the "
                                        "model's vocab_size is {}",
                                        o.data_path, vocab_->size(), cfg.vocab_size));
            vocab_->to_dense(tok_.encode(o.start_context, true), "the start context (the epoch samples' prompt)");
        }
    } else {
        std::string text = read_text_file(o.data_path);
        Tokenizer::note_invalid_utf8("--data '" + o.data_path + "'", text);
        auto [train_text, val_text] = split_train_val(text, o.train_ratio);
        train_ds_ = std::make_unique<WindowDataset>(tok_.encode_parallel(train_text, true), T, T);
        val_ds_ = std::make_unique<WindowDataset>(tok_.encode_parallel(val_text, true), T, T);
        train_loader_ = std::make_unique<DataLoader>(*train_ds_, o.batch_size, o.shuffle, true);
        val_loader_ = std::make_unique<DataLoader>(*val_ds_, o.batch_size, false, false);
        if (train_loader_->num_batches() == 0)
            throw Error(fmt::format(
                "tapegrad: '{}' gives {} training tokens: fewer than one batch of {} windows of {}+1 "
                "tokens (lower --max-length, --context-length or --batch-size)",
                o.data_path, train_ds_->num_tokens(), o.batch_size, T));
    }
    manual_seed(o.seed);  // the book seeds right before GPTModel(...)
    model_ = models::build_model(cfg);  // cfg.init: the default draw, or the product arm
    if (!o.init_from.empty()) {
        bool hf = false;
        {
            models::MappedSafeTensors mapped(o.init_from);
            hf = models::is_gpt2_hf(mapped);
        }
        if (hf) {  // a Hugging Face GPT-2 file: the book's mapping (models/gpt2_hf.h)
            models::load_init_weights(*model_, o.init_from);
        } else {
            auto st = models::read_safetensors(o.init_from);
            // Shapes can agree while the config does not (4 heads of 16 or 2 of 32):
            // a file with tapegrad's config is compared as --resume does.
            if (st.metadata.count("tapegrad.config"))
                if (std::string d = models::config_diff(models::checkpoint_config(st, o.init_from), cfg);
                    !d.empty())
                    throw Error("tapegrad: --init-from '" + o.init_from +
                                "' was made with another config: " + d);
            models::load_model_weights(*model_, st, o.init_from, o.allow_nonfinite);
        }
    }
    opt_ = make_optimizer(o, *model_);
    if (dist::world() > 1) {
        if (o.batch_size % dist::world() != 0)
            throw Error(fmt::format(
                "tapegrad: --batch-size {} is the global batch and must split evenly over the {} ranks of "
                "mpirun -np {}: use a multiple of {} (each rank then takes --batch-size / {} rows)",
                o.batch_size, dist::world(), dist::world(), dist::world(), dist::world()));
        reducer_ = std::make_unique<GradReducer>(model_->parameters(), o.bucket_mb);
        res_.world = dist::world();
        res_.dp_buckets = reducer_->num_buckets();
    }
    total_steps_ = batches_per_epoch() * o.epochs;
    if (o.max_steps >= 0) total_steps_ = std::min(total_steps_, o.max_steps);
    warn_schedule(o, total_steps_);
    if (o.warmup > 0 || o.min_lr)
        schedule_ = std::make_unique<optim::WarmupCosine>(optim::WarmupCosine{
            o.lr, o.min_lr.value_or(0.0), o.min_lr.value_or(0.0), o.warmup, total_steps_});
    res_.run_id = new_run_id();  // a resumed run takes its checkpoint's
    if (!o.resume_path.empty()) resume(o.resume_path);
    res_.num_parameters = model_->num_parameters();
    res_.wall.startup = since(t0_);
}

int64_t Trainer::batches_per_epoch() const {
    return shards_ ? shards_->train->batches_per_epoch() : train_loader_->num_batches();
}

double Trainer::elapsed() const {
    return pos_.elapsed_s + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
}

std::vector<int64_t> Trainer::next_train_order() {
    std::vector<int64_t> order = train_loader_->begin_iteration(default_generator());
    if (o_.replay_orders) {
        if (pos_.replay_index >= static_cast<int64_t>(o_.replay_orders->size()))
            throw Error("tapegrad: compare: the replayed batch order ran out");
        order = (*o_.replay_orders)[pos_.replay_index];
    }
    pos_.replay_index++;
    if (o_.record_orders) o_.record_orders->push_back(order);
    return order;
}

Trainer::StepStats Trainer::train_step(const Batch& b) {
    int64_t step = pos_.global_step + 1;
    if (schedule_) opt_->lr = (*schedule_)(step);
    for (StepObserver* ob : observers_) ob->begin_step(step);
    set_backward_step(step);  // TAPEGRAD_BREAK_STEP compares with it
    opt_->zero_grad();
    // Data parallel: this rank's rows of the global batch, with the dropout masks
    // the single process draws for them; the loss printed and judged is the
    // global batch's (the same on every rank, so every rank decides alike).
    const int64_t B = b.input.shape[0];
    RowRange rows{0, B};
    if (reducer_) {
        rows = rank_rows(B, dist::rank(), dist::world());
        set_dropout_rows({rows.begin, rows.size(), B});
    }
    Batch local = reducer_ ? slice_rows(b, rows) : b;
    Tensor loss;
    batch_ = &local;
    struct CurrentBatch {  // current_batch() for the observers, until train_step returns
        const Batch*& p;
        ~CurrentBatch() { p = nullptr; }
    } current{batch_};
    try {
        loss = cross_entropy(model_->forward(local.input), local.target);
    } catch (...) {
        set_dropout_rows({});
        throw;
    }
    set_dropout_rows({});
    double l = loss.item(), gnorm = std::nan("");
    if (reducer_) l = global_batch_loss(l, rows.size(), B);
    if (!std::isfinite(l) && handle_nonfinite(l, gnorm, step)) {
        tape().clear();  // the skipped step's graph
        return {l, gnorm, true};
    }
    for (StepObserver* ob : observers_) ob->before_backward();
    if (reducer_) {
        reducer_->begin();
        try {
            loss.backward();
        } catch (...) {
            set_backward_listener(nullptr);
            throw;
        }
        reducer_->finish();  // every rank now holds the global batch's mean gradient
        res_.dp_steps++;
        res_.dp_launched_in_backward += reducer_->last().launched_in_backward;
    } else {
        loss.backward();
    }
    for (StepObserver* ob : observers_) ob->after_backward();
    // Without clipping the norm is a by-product of the optimizer's fused pass;
    // --on-nan skip needs it before the update, at the price of one more pass.
    bool skip_policy = parse_on_nan(o_.on_nan) == OnNan::skip;
    if (o_.clip > 0)
        gnorm = optim::clip_grad_norm(model_->parameters(), o_.clip);
    else if (skip_policy)
        gnorm = optim::grad_norm(model_->parameters());
    if ((o_.clip > 0 || skip_policy) && !std::isfinite(gnorm) && handle_nonfinite(l, gnorm, step))
        return {l, gnorm, true};
    for (StepObserver* ob : observers_) ob->before_update();
    opt_->step();
    if (o_.clip <= 0) gnorm = opt_->last_grad_norm();
    // Found only by the fused pass, after the update: the weights are not
    // trusted any more, so judge_step() can only stop the run here.
    if (!std::isfinite(gnorm)) handle_nonfinite(l, gnorm, step);
    for (StepObserver* ob : observers_) ob->after_update(opt_->lr);
    return {l, gnorm, false};
}

bool Trainer::handle_nonfinite(double loss, double gnorm, int64_t step) {
    StepVerdict v = judge_step(loss, gnorm, parse_on_nan(o_.on_nan));
    if (v == StepVerdict::ok) return false;
    std::string what = std::isfinite(loss)
                           ? fmt::format("the gradient norm is {} (loss {})", num(gnorm), num(loss))
                           : fmt::format("the loss is {}", num(loss));
    if (v == StepVerdict::skip) {
        pos_.skipped_steps++;
        std::cerr << fmt::format("tapegrad: step {}: {}: step skipped, no update (--on-nan skip)\n", step,
                                 what);
        return true;
    }
    res_.stopped_by = "nonfinite";
    res_.diverged = fmt::format("step {}: {}", step, what);
    throw DivergedStop{};
}

// The periodic checkpoint, taken between steps where the position is exact.
void Trainer::save_every() {
    if (o_.save_every <= 0 || o_.save_path.empty() || pos_.global_step < 0) return;
    if ((pos_.global_step + 1) % o_.save_every != 0) return;
    if (res_.saved_path == o_.save_path && res_.saved_step == pos_.global_step) return;
    save(o_.save_path);
}

TrainResult Trainer::run() {
    bool diverged = false;
    try {
        loop();
    } catch (const DivergedStop&) {
        diverged = true;  // no checkpoint of these weights: the one on disk is the last good one
    } catch (const Error& e) {
        // A failed write (or any error) mid-run: no checkpoint of a step the logs
        // may not hold; the one on disk is kept, and said.
        if (res_.saved_path.empty()) throw;
        throw Error(fmt::format("{}\n  kept: the checkpoint '{}' (step {}; continue with --resume {})",
                                e.what(), res_.saved_path, res_.saved_step, res_.saved_path));
    }
    for (StepObserver* ob : observers_) ob->end_run();
    res_.tokens_seen = pos_.tokens_seen;
    res_.skipped_steps = pos_.skipped_steps;
    if (!diverged && !o_.save_path.empty() &&
        (res_.saved_path != o_.save_path || res_.saved_step != pos_.global_step))
        save(o_.save_path);
    res_.seconds = elapsed();
    res_.wall.total = since(t0_);
    return res_;
}

void Trainer::loop() {
    for (; pos_.epoch < o_.epochs; ++pos_.epoch) {
        if (!pos_.in_epoch) {
            model_->train();
            // Shards need no drawn order: theirs is a function of (seed, epoch).
            pos_.order = shards_ ? std::vector<int64_t>{} : next_train_order();
            pos_.next_batch = 0;
            pos_.in_epoch = true;
        }
        bool budget_left = true;
        for (; pos_.next_batch < batches_per_epoch(); ++pos_.next_batch) {
            save_every();
            budget_left = (o_.max_steps < 0 || pos_.global_step + 1 < o_.max_steps) &&
                          (o_.stop_after < 0 || pos_.global_step + 1 < o_.stop_after);
            if (!budget_left) break;
            if (should_stop()) {  // between steps: the position is exact, the checkpoint resumes
                res_.stopped_by = stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT";
                return;
            }
            auto t_batch = std::chrono::steady_clock::now();  // the batch's assembly is the step's wall time
            Batch b = shards_ ? shards_->train->batch(pos_.epoch, pos_.next_batch)
                              : train_loader_->batch(pos_.order, pos_.next_batch);
            auto t_step = std::chrono::steady_clock::now();
            StepStats s;
            try {
                s = train_step(b);
            } catch (const Error& e) {  // name the step (an anomaly, a failed write)
                std::string what = e.what();
                if (what.rfind("tapegrad: ", 0) == 0) what.erase(0, 10);
                throw Error(fmt::format("tapegrad: step {}: {}", pos_.global_step + 1, what));
            }
            res_.train_seconds += since(t_step);
            res_.wall.steps += since(t_batch);
            pos_.tokens_seen += b.numel();
            pos_.global_step++;
            res_.steps++;
            res_.step_losses.push_back(s.loss);
            StepInfo info{pos_.epoch, pos_.global_step, pos_.tokens_seen, s.loss, opt_->lr, s.grad_norm};
            for (StepObserver* ob : observers_) ob->end_step(info);
        }
        if (!budget_left) break;  // max_steps mid-epoch: the position stays inside it
        for (StepObserver* ob : observers_) ob->end_epoch(pos_.epoch);
        pos_.in_epoch = false;
    }
}

std::map<std::string, std::string> Trainer::checkpoint_metadata() const {
    json st = {{"epoch", pos_.epoch},
               {"next_batch", pos_.next_batch},
               {"global_step", pos_.global_step},
               {"tokens_seen", pos_.tokens_seen},
               {"replay_index", pos_.replay_index},
               {"order", pos_.order},
               {"in_epoch", pos_.in_epoch},
               {"generator", default_generator().state()},
               {"elapsed_s", elapsed()},
               {"train_seconds", res_.train_seconds},
               {"skipped_steps", pos_.skipped_steps}};
    json history = {{"samples", res_.samples},
                    {"sample_ids", res_.sample_ids},
                    {"book_lines", res_.book_lines},
                    {"evals", json::array()}};
    for (const EvalPoint& e : res_.evals) history["evals"].push_back(eval_to_json(e));
    std::map<std::string, std::string> meta = {
        {"tapegrad.train", json_text(st, "the checkpoint's training position")},
        {"tapegrad.history", json_text(history, "the checkpoint's run history")},
        {"tapegrad.run_id", res_.run_id},
        {"tapegrad.optimizer_type", o_.optimizer}};
    if (vocab_) meta["tapegrad.vocab"] = vocab_->to_json();  // generate decodes through it
    return meta;
}

void Trainer::save(const std::string& path) {
    // Every rank holds the same weights, optimizer state, generator and position,
    // so rank 0's checkpoint is the run's, whatever the number of ranks.
    // saved_* name the checkpoint on disk: set once it is written (a failed
    // write leaves the previous one there, and the message names that one).
    if (dist::is_root()) {
        PhaseTimer timer(res_.wall.checkpoints);
        models::save_checkpoint(path, *model_, opt_.get(), checkpoint_metadata());
    }
    res_.saved_path = path;
    res_.saved_step = pos_.global_step;
}

namespace {

// A checkpoint's position must fit this run's data: a hand-edited (or foreign)
// one is refused naming the field, never read past an order's end.
// windows: the text dataset's window count (-1 for shards: no order stored).
void check_position(const Position& p, int64_t batches, int64_t windows, const std::string& path) {
    auto bad = [&](const std::string& what) {
        throw Error(fmt::format("tapegrad: --resume: '{}': training position out of range: {}", path, what));
    };
    if (p.epoch < 0) bad(fmt::format("epoch {} < 0", p.epoch));
    if (p.next_batch < 0 || p.next_batch > batches)
        bad(fmt::format("next_batch {} is not in [0, {}] (the batches of an epoch)", p.next_batch, batches));
    if (p.global_step < -1 || p.tokens_seen < 0 || p.replay_index < 0)
        bad(fmt::format("global_step {}, tokens_seen {}, replay_index {}", p.global_step, p.tokens_seen,
                        p.replay_index));
    if (windows < 0 || !p.in_epoch) return;
    if (static_cast<int64_t>(p.order.size()) != windows)
        bad(fmt::format("the epoch's order holds {} windows, the data {}", p.order.size(), windows));
    for (size_t i = 0; i < p.order.size(); ++i)
        if (p.order[i] < 0 || p.order[i] >= windows)
            bad(fmt::format("order[{}] = {} is not a window in [0, {})", i, p.order[i], windows));
}

}  // namespace

void Trainer::resume(const std::string& path) {
    auto st = models::read_safetensors(path);
    models::GPTConfig saved = models::checkpoint_config(st, path);
    if (models::config_to_json(saved) != models::config_to_json(o_.config))
        throw Error("tapegrad: --resume: checkpoint '" + path + "' was made with config " + saved.describe() +
                    ", not " + o_.config.describe() + " (" + models::config_diff(saved, o_.config) + ")");
    models::load_model_weights(*model_, st, path, o_.allow_nonfinite);
    if (!o_.fresh_optimizer) models::load_optimizer_state(*opt_, o_.optimizer, st, path);
    auto it = st.metadata.find("tapegrad.train");
    if (it == st.metadata.end()) throw Error("tapegrad: --resume: '" + path + "' has no training position");
    try {
        json j = json::parse(it->second);
        pos_.epoch = j.at("epoch");
        pos_.next_batch = j.at("next_batch");
        pos_.global_step = j.at("global_step");
        pos_.tokens_seen = j.at("tokens_seen");
        pos_.replay_index = j.at("replay_index");
        pos_.order = j.at("order").get<std::vector<int64_t>>();
        pos_.in_epoch = j.at("in_epoch");
        default_generator().set_state(j.at("generator").get<std::string>());
        // Older checkpoints have no clock: their resumed figures start at zero.
        pos_.elapsed_s = j.value("elapsed_s", 0.0);
        pos_.train_seconds = j.value("train_seconds", 0.0);
        pos_.skipped_steps = j.value("skipped_steps", int64_t{0});
        res_.train_seconds = pos_.train_seconds;
        res_.steps = pos_.global_step + 1;  // counts continue the original run's
        res_.saved_path = path;
        res_.saved_step = pos_.global_step;
    } catch (const json::exception& e) {
        throw Error("tapegrad: --resume: '" + path + "': malformed training position: " + e.what());
    }
    check_position(pos_, batches_per_epoch(), shards_ ? -1 : train_ds_->size(), path);
    restore_history(st, path);
    // Older checkpoints carry no identity: they resume anywhere, as before.
    if (auto id = st.metadata.find("tapegrad.run_id"); id != st.metadata.end()) {
        res_.run_id = id->second;
        check_run_folder(path);
    }
}

// What summary.json reports of the steps before the checkpoint (older
// checkpoints have none: the summary then starts at the resume).
void Trainer::restore_history(const models::SafeTensors& st, const std::string& path) {
    auto it = st.metadata.find("tapegrad.history");
    if (it == st.metadata.end()) return;
    try {
        json h = json::parse(it->second);
        res_.samples = h.at("samples").get<std::vector<std::string>>();
        res_.sample_ids = h.at("sample_ids").get<std::vector<std::vector<int64_t>>>();
        res_.book_lines = h.at("book_lines").get<std::string>();
        for (const json& e : h.at("evals")) res_.evals.push_back(eval_from_json(e));
    } catch (const json::exception& e) {
        throw Error("tapegrad: --resume: '" + path + "': malformed run history: " + e.what());
    }
}

// --out must be this run's folder (its run_id), or hold no run yet.
void Trainer::check_run_folder(const std::string& checkpoint) const {
    if (o_.out_dir.empty()) return;
    std::string held;
    if (std::filesystem::exists(run_id_path(o_.out_dir))) {
        held = read_file(run_id_path(o_.out_dir), "--out");
        while (!held.empty() && (held.back() == '\n' || held.back() == ' ')) held.pop_back();
    } else if (!holds_run(o_.out_dir)) {
        return;  // a fresh folder: the run continues there
    }
    if (held == res_.run_id) return;
    throw Error(fmt::format(
        "tapegrad: --resume: checkpoint '{}' belongs to run {}, but --out '{}' holds {}: resuming there "
        "would append one run's history to another's; give the run's own folder or a new one",
        checkpoint, res_.run_id, o_.out_dir,
        held.empty() ? std::string("a run without a run id (not this checkpoint's)") : "run " + held));
}

namespace {

// Calls opt.on_first_step once, after the first step of this invocation.
class FirstStepHook : public StepObserver {
public:
    explicit FirstStepHook(const std::function<void()>& f) : f_(f) {}
    void end_step(const StepInfo&) override {
        if (done_ || !f_) return;
        done_ = true;
        f_();
    }

private:
    const std::function<void()>& f_;
    bool done_ = false;
};

}  // namespace

TrainResult train_model(const TrainOptions& opt) {
    preflight(opt);
    set_detect_anomaly(opt.detect_anomaly);
    Trainer trainer(opt);
    StandardObservers obs(trainer);
    FirstStepHook first_step(opt.on_first_step);
    trainer.add_observer(&first_step);
    TrainResult res = trainer.run();
    res.probe_seconds = obs.probe_seconds();
    // The probe runs inside the steps' hooks: its time is its own part, not the step's.
    res.wall.probe = obs.probe_seconds();
    res.wall.steps -= res.wall.probe;
    return res;
}

}  // namespace tg::train
