#include "train/trainer.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "models/checkpoint.h"
#include "models/generate.h"
#include "optim/adamw.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
#include "train/checks.h"
#include "train/data.h"
#include "train/metrics.h"
#include "train/probe.h"
#include "train/run_guard.h"
#include "train/tokenizer.h"

namespace tg::train {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Where a run stands; saved in checkpoints for a bit-identical resume.
struct Position {
    int64_t epoch = 0, next_batch = 0, global_step = -1, tokens_seen = 0, replay_index = 0;
    std::vector<int64_t> order;  // the current epoch's window order
    bool in_epoch = false;
    // The run's clock and counts before this process (a resumed run continues them).
    double elapsed_s = 0, train_seconds = 0;
    int64_t skipped_steps = 0;
};

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

// Mean loss over the first eval_iter batches of one iteration of the loader.
double loader_loss(models::GPTModel& model, DataLoader& loader, const std::vector<int64_t>& order,
                   int64_t eval_iter) {
    int64_t n = loader.num_batches();
    if (n == 0) return std::nan("");
    n = std::min(n, eval_iter);
    double total = 0;
    for (int64_t k = 0; k < n; ++k) {
        Batch b = loader.batch(order, k);
        total += cross_entropy(model.forward(b.input), b.target).item();
    }
    return total / static_cast<double>(n);
}

class Run {
public:
    explicit Run(const TrainOptions& o);
    TrainResult run();

private:
    std::vector<int64_t> train_order();  // one iteration of the train loader (recorded / replayed)
    void evaluate(int64_t epoch);
    void step(const Batch& b, int64_t epoch);
    void save(const std::string& path);
    void save_every();
    void loop();
    void finish_result();
    void resume(const std::string& path);
    void progress(double loss);
    double elapsed() const { return pos_.elapsed_s + seconds_since(t0_); }  // the run's clock
    // A non-finite loss or gradient norm at this step: skip it or stop the run.
    bool handle_nonfinite(double loss, double gnorm, int64_t step);

    TrainOptions o_;
    Tokenizer tok_;
    std::unique_ptr<WindowDataset> train_ds_, val_ds_;
    std::unique_ptr<DataLoader> train_loader_, val_loader_;
    std::unique_ptr<models::GPTModel> model_;
    std::unique_ptr<optim::Optimizer> opt_;
    std::unique_ptr<optim::WarmupCosine> schedule_;
    std::unique_ptr<MetricsWriter> metrics_;
    std::unique_ptr<DynamicsProbe> probe_;
    Position pos_;
    TrainResult res_;
    Clock::time_point t0_ = Clock::now();
    int64_t total_steps_ = 0;
    std::optional<std::pair<double, double>> pending_eval_;
};

Run::Run(const TrainOptions& o) : o_(o), tok_(o.vocab_dir + "/encoder.json", o.vocab_dir + "/vocab.bpe") {
    const auto& cfg = o.config;
    std::string text = read_text_file(o.data_path);
    Tokenizer::note_invalid_utf8("--data '" + o.data_path + "'", text);
    auto [train_text, val_text] = split_train_val(text, o.train_ratio);
    int64_t T = cfg.context_length;
    train_ds_ = std::make_unique<WindowDataset>(tok_.encode(train_text, true), T, T);
    val_ds_ = std::make_unique<WindowDataset>(tok_.encode(val_text, true), T, T);
    train_loader_ = std::make_unique<DataLoader>(*train_ds_, o.batch_size, o.shuffle, true);
    val_loader_ = std::make_unique<DataLoader>(*val_ds_, o.batch_size, false, false);
    if (train_loader_->num_batches() == 0)
        throw Error(
            fmt::format("tapegrad: '{}' gives {} training tokens: fewer than one batch of {} windows of {}+1 "
                        "tokens (lower --context-length or --batch-size)",
                        o.data_path, train_ds_->num_tokens(), o.batch_size, T));
    manual_seed(o.seed);  // the book seeds right before GPTModel(...)
    model_ = std::make_unique<models::GPTModel>(cfg);
    if (!o.init_from.empty()) {
        auto st = models::read_safetensors(o.init_from);
        // Shapes can agree while the config does not (4 heads of 16 or 2 of 32):
        // a file with tapegrad's config is compared as --resume does.
        if (st.metadata.count("tapegrad.config"))
            if (std::string d = models::config_diff(models::checkpoint_config(st, o.init_from), cfg);
                !d.empty())
                throw Error("tapegrad: --init-from '" + o.init_from + "' was made with another config: " + d);
        models::load_model_weights(*model_, st, o.init_from, o.allow_nonfinite);
    }
    opt_ = make_optimizer(o, *model_);
    total_steps_ = train_loader_->num_batches() * o.epochs;
    if (o.max_steps >= 0) total_steps_ = std::min(total_steps_, o.max_steps);
    warn_schedule(o, total_steps_);
    if (o.warmup > 0 || o.min_lr)
        schedule_ = std::make_unique<optim::WarmupCosine>(optim::WarmupCosine{
            o.lr, o.min_lr.value_or(0.0), o.min_lr.value_or(0.0), o.warmup, total_steps_});
    if (!o.resume_path.empty()) resume(o.resume_path);
    if (!o.out_dir.empty()) {
        std::filesystem::create_directories(o.out_dir);
        metrics_ = std::make_unique<MetricsWriter>(o.out_dir + "/metrics.csv", !o.resume_path.empty());
        if (o.probe_every > 0)
            probe_ = std::make_unique<DynamicsProbe>(*model_, o.out_dir + "/dynamics.csv", o.probe_every,
                                                     !o.resume_path.empty());
    }
    res_.num_parameters = model_->num_parameters();
}

std::vector<int64_t> Run::train_order() {
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

void Run::evaluate(int64_t epoch) {
    model_->eval();
    double tl, vl;
    {
        NoGradGuard ng;
        std::vector<int64_t> to = train_order();
        tl = loader_loss(*model_, *train_loader_, to, o_.eval_iter);
        std::vector<int64_t> vo = val_loader_->begin_iteration(default_generator());
        vl = loader_loss(*model_, *val_loader_, vo, o_.eval_iter);
    }
    model_->train();
    res_.evals.push_back({epoch + 1, pos_.global_step, pos_.tokens_seen, tl, vl});
    std::string line = fmt::format("Ep {} (Step {:06d}): Train loss {:.3f}, Val loss {:.3f}", epoch + 1,
                                   pos_.global_step, tl, vl);
    res_.book_lines += line + "\n";
    if (!o_.quiet) {
        if (isatty(STDERR_FILENO)) std::cerr << "\r\033[K";
        std::cout << line << std::endl;
    }
    pending_eval_ = {tl, vl};
}

void Run::step(const Batch& b, int64_t epoch) {
    if (schedule_) opt_->lr = (*schedule_)(pos_.global_step + 1);
    auto t_step = Clock::now();
    bool profile_now = o_.profile && pos_.global_step == 0;  // the second step: buffers are warm
    if (profile_now) set_profiling(true);
    if (probe_) probe_->begin_step(pos_.global_step + 1);
    opt_->zero_grad();
    Tensor loss = cross_entropy(model_->forward(b.input), b.target);
    double l = loss.item();
    double gnorm = std::nan("");
    bool skip = std::isfinite(l) ? false : handle_nonfinite(l, gnorm, pos_.global_step + 1);
    auto t_opt = Clock::now();
    if (!skip) {
        loss.backward();
        if (probe_) probe_->after_backward();
        t_opt = Clock::now();
        // Without clipping the norm is a by-product of the optimizer's fused pass;
        // --on-nan skip needs it before the update, at the price of one more pass.
        if (o_.clip > 0)
            gnorm = optim::clip_grad_norm(model_->parameters(), o_.clip);
        else if (parse_on_nan(o_.on_nan) == OnNan::skip)
            gnorm = optim::grad_norm(model_->parameters());
        skip = !std::isfinite(gnorm) && (o_.clip > 0 || parse_on_nan(o_.on_nan) == OnNan::skip) &&
               handle_nonfinite(l, gnorm, pos_.global_step + 1);
    }
    if (!skip) {
        if (probe_) probe_->before_update();
        opt_->step();
        if (o_.clip <= 0) gnorm = opt_->last_grad_norm();
        // Found only by the fused pass: the update is done, so the weights are
        // not trusted any more; judge_step() can only stop here.
        if (!std::isfinite(gnorm)) handle_nonfinite(l, gnorm, pos_.global_step + 1);
        if (probe_) probe_->after_update(opt_->lr);
    } else {
        tape().clear();  // the skipped step's graph
    }
    if (profile_now) {
        profile_add(o_.clip > 0 ? "norm+clip+optim" : "norm+optimizer", seconds_since(t_opt), 0);
        set_profiling(false);
        print_profile(std::cout, seconds_since(t_step));
    }
    res_.train_seconds += seconds_since(t_step);
    pos_.tokens_seen += b.numel();
    pos_.global_step++;
    res_.steps++;
    res_.step_losses.push_back(l);
    pending_eval_.reset();
    if (o_.eval_freq > 0 && pos_.global_step % o_.eval_freq == 0) evaluate(epoch);
    if (metrics_) {
        StepRow row{epoch + 1, pos_.global_step, pos_.tokens_seen, l, opt_->lr, gnorm, elapsed(), {}, {}};
        if (pending_eval_) {
            row.train_loss = pending_eval_->first;
            row.val_loss = pending_eval_->second;
        }
        metrics_->write(row);
    }
    progress(l);
}

void Run::progress(double loss) {
    if (o_.quiet || !isatty(STDERR_FILENO)) return;
    double el = elapsed();  // the run's clock, so tokens/s counts the run's tokens over the run's time
    int64_t done = pos_.global_step + 1;
    double eta = done > 0 ? el / static_cast<double>(done) * static_cast<double>(total_steps_ - done) : 0;
    std::cerr << fmt::format("\r\033[K[{}] step {}/{}  loss {:.3f}  {:.0f} tok/s  ETA {:.0f}s",
                             o_.config.attention, done, total_steps_, loss,
                             static_cast<double>(pos_.tokens_seen) / std::max(el, 1e-9), eta)
              << std::flush;
}

// Thrown by handle_nonfinite() to leave the loop of a diverged run.
struct DivergedStop {};

bool Run::handle_nonfinite(double loss, double gnorm, int64_t step) {
    StepVerdict v = judge_step(loss, gnorm, parse_on_nan(o_.on_nan));
    if (v == StepVerdict::ok) return false;
    auto num = [](double v) {
        return std::isnan(v) ? std::string("nan") : fmt::format("{}", v);
    };  // not "-nan"
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
void Run::save_every() {
    if (o_.save_every <= 0 || o_.save_path.empty() || res_.steps == 0) return;
    if ((pos_.global_step + 1) % o_.save_every != 0 || res_.saved_step == pos_.global_step) return;
    save(o_.save_path);
}

TrainResult Run::run() {
    try {
        loop();
    } catch (const DivergedStop&) {
        // No checkpoint of the diverged weights: the one on disk (if any) is
        // the last good one.
        if (!o_.quiet && isatty(STDERR_FILENO)) std::cerr << "\r\033[K";
        finish_result();
        return res_;
    }
    if (!o_.quiet && isatty(STDERR_FILENO)) std::cerr << "\r\033[K";
    if (!o_.save_path.empty() && (res_.saved_path != o_.save_path || res_.saved_step != pos_.global_step))
        save(o_.save_path);
    finish_result();
    return res_;
}

void Run::finish_result() {
    res_.tokens_seen = pos_.tokens_seen;
    res_.skipped_steps = pos_.skipped_steps;
    if (probe_) res_.probe_seconds = probe_->seconds();
    res_.seconds = elapsed();
}

void Run::loop() {
    for (; pos_.epoch < o_.epochs; ++pos_.epoch) {
        if (!pos_.in_epoch) {
            model_->train();
            pos_.order = train_order();
            pos_.next_batch = 0;
            pos_.in_epoch = true;
        }
        for (; pos_.next_batch < train_loader_->num_batches(); ++pos_.next_batch) {
            save_every();
            if (o_.max_steps >= 0 && pos_.global_step + 1 >= o_.max_steps) return;
            if (should_stop()) {  // between steps: the position is exact, the checkpoint resumes
                res_.stopped_by = stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT";
                return;
            }
            try {
                step(train_loader_->batch(pos_.order, pos_.next_batch), pos_.epoch);
            } catch (const Error& e) {  // name the step (an anomaly, a failed write)
                throw Error(fmt::format("tapegrad: step {}: {}", pos_.global_step + 1, e.what()));
            }
        }
        {
            std::vector<int64_t> ids = tok_.encode(o_.start_context, true);
            auto out = models::generate(*model_, ids, {.max_new_tokens = o_.sample_tokens});
            std::string text = tok_.decode(out);
            for (char& c : text)
                if (c == '\n') c = ' ';
            res_.samples.push_back(text);
            if (!o_.quiet) {
                if (isatty(STDERR_FILENO)) std::cerr << "\r\033[K";
                std::cout << text << std::endl;
            }
        }
        pos_.in_epoch = false;
    }
}

void Run::save(const std::string& path) {
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
    models::save_checkpoint(path, *model_, opt_.get(),
                            {{"tapegrad.train", st.dump()}, {"tapegrad.optimizer_type", o_.optimizer}});
    res_.saved_path = path;
    res_.saved_step = pos_.global_step;
}

void Run::resume(const std::string& path) {
    auto st = models::read_safetensors(path);
    models::GPTConfig saved = models::checkpoint_config(st, path);
    if (models::config_to_json(saved) != models::config_to_json(o_.config))
        throw Error("tapegrad: --resume: checkpoint '" + path + "' was made with config " + saved.describe() +
                    ", not " + o_.config.describe() + " (" + models::config_diff(saved, o_.config) + ")");
    models::load_model_weights(*model_, st, path, o_.allow_nonfinite);
    models::load_optimizer_state(*opt_, o_.optimizer, st, path);
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
}

}  // namespace

TrainResult train_model(const TrainOptions& opt) {
    preflight(opt);
    set_detect_anomaly(opt.detect_anomaly);
    Run run(opt);
    return run.run();
}

}  // namespace tg::train
