#include "train/observers/standard.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>

#include "core/tape.h"
#include "models/generate.h"
#include "models/safetensors.h"
#include "train/dist/grad_reducer.h"
#include "train/dist/mpi.h"
#include "train/io/checked_file.h"
#include "train/run/clock.h"

namespace tg::train {
namespace {

// Clears the progress line (if one is shown) before a line goes to stdout.
void clear_progress_line() {
    if (isatty(STDERR_FILENO)) std::cerr << "\r\033[K";
}

// One evaluation batch's loss. Under mpirun each rank evaluates its rows
// (a short last batch splits as evenly as it can) and the shares are summed
// into the single process's mean over the batch (train/dist/grad_reducer.h).
double batch_loss(models::GPTModel& model, const Batch& b) {
    if (dist::world() == 1) return cross_entropy(model.forward(b.input), b.target).item();
    const int64_t B = b.input.shape[0];
    RowRange r = rank_rows(B, dist::rank(), dist::world());
    double local = 0;
    if (r.size() > 0) {
        Batch mine = slice_rows(b, r);
        local = cross_entropy(model.forward(mine.input), mine.target).item();
    }
    return global_batch_loss(local, r.size(), B);
}

// Mean loss over the first eval_iter batches of one iteration of the loader.
double loader_loss(models::GPTModel& model, DataLoader& loader, const std::vector<int64_t>& order,
                   int64_t eval_iter) {
    int64_t n = loader.num_batches();
    if (n == 0) return std::nan("");
    n = std::min(n, eval_iter);
    double total = 0;
    for (int64_t k = 0; k < n; ++k) {
        total += batch_loss(model, loader.batch(order, k));
    }
    return total / static_cast<double>(n);
}

// --probe-pairs K: the probe's pair decomposition into <out>/pairs.csv, the
// tokens read from the Trainer's current batch (decoded through the corpus's
// compact vocabulary when there is one). One process only: said, not failed.
void enable_probe_pairs(Trainer& t, DynamicsProbe* probe, bool append) {
    const TrainOptions& o = t.options();
    if (o.probe_pairs <= 0) return;
    if (!probe) {
        if (dist::is_root())
            std::cerr
                << "tapegrad: note: --probe-pairs reads the probe's G: it needs --probe-every N and --out; "
                   "this run writes no pairs.csv\n";
        return;
    }
    if (dist::world() > 1) {
        if (dist::is_root())
            std::cerr
                << "tapegrad: note: --probe-pairs is single-process only (a rank's pairs are its rows of "
                   "the batch, G the global one): this run writes no pairs.csv\n";
        return;
    }
    if (append && !o.out_dir.empty()) cut_csv_rows(o.out_dir + "/pairs.csv", 0, t.position().global_step);
    DynamicsProbe::PairTokens tokens;
    tokens.ids = [&t]() -> const Ids* { return t.current_batch() ? &t.current_batch()->input : nullptr; };
    tokens.decode = [&t](int64_t id) {
        const VocabMap* vm = t.vocab_map();
        return t.tokenizer().decode({vm ? vm->to_gpt2(id) : id});
    };
    probe->enable_pairs(o.probe_pairs, o.out_dir.empty() ? "" : o.out_dir + "/pairs.csv", std::move(tokens),
                        append);
}

}  // namespace

void Evaluation::end_step(const StepInfo& info) {
    this_step_.reset();
    const TrainOptions& o = t_.options();
    if (o.eval_freq <= 0 || info.step % o.eval_freq != 0) return;
    PhaseTimer timer(t_.result().wall.eval);
    models::GPTModel& model = t_.model();
    model.eval();
    double tl, vl;
    {
        NoGradGuard ng;
        // The book's evaluate_model iterates train_loader, and a shuffling PyTorch
        // DataLoader draws a fresh permutation from the global generator each time
        // it is iterated: this draw shifts every later shuffle and dropout mask,
        // so it is taken here too (and recorded/replayed by compare) to print the
        // book's lines digit for digit.
        if (const ShardCorpus* sc = t_.shards()) {
            // Shards: the fixed, evenly spaced subsets, the same in every run.
            auto loss = [&](const Batch& b) { return batch_loss(model, b); };
            tl = ShardCorpus::eval_loss(sc->train.get(), o.eval_iter, loss);
            vl = ShardCorpus::eval_loss(sc->val.get(), o.eval_iter, loss);
        } else {
            std::vector<int64_t> to = t_.next_train_order();
            tl = loader_loss(model, *t_.train_loader(), to, o.eval_iter);
            std::vector<int64_t> vo = t_.val_loader()->begin_iteration(default_generator());
            vl = loader_loss(model, *t_.val_loader(), vo, o.eval_iter);
        }
    }
    model.train();
    EvalPoint p{info.epoch + 1, info.step, info.tokens_seen, tl, vl};
    t_.result().evals.push_back(p);
    this_step_ = p;
    std::string line = fmt::format("Ep {} (Step {:06d}): Train loss {:.3f}, Val loss {:.3f}", info.epoch + 1,
                                   info.step, tl, vl);
    t_.result().book_lines += line + "\n";
    if (!o.quiet) {
        clear_progress_line();
        std::cout << line << std::endl;
    }
}

void Metrics::end_step(const StepInfo& info) {
    PhaseTimer timer(t_.result().wall.metrics);
    StepRow row{info.epoch + 1, info.step, info.tokens_seen,
                info.loss,      info.lr,   info.grad_norm,
                t_.elapsed(),   {},        {}};
    if (eval_.this_step()) {
        row.train_loss = eval_.this_step()->train_loss;
        row.val_loss = eval_.this_step()->val_loss;
    }
    writer_.write(row);
    if (!wrote_id_) {  // with the first row: a run that fails before it leaves no folder
        models::write_file_atomic(run_id_path(t_.options().out_dir), t_.result().run_id + "\n");
        wrote_id_ = true;
    }
}

void Progress::end_step(const StepInfo& info) {
    if (t_.options().quiet || !isatty(STDERR_FILENO)) return;
    PhaseTimer timer(t_.result().wall.metrics);
    double el = t_.elapsed();
    int64_t done = info.step + 1, ran = t_.result().steps;
    double eta = ran > 0 ? el / static_cast<double>(ran) * static_cast<double>(t_.total_steps() - done) : 0;
    std::cerr << fmt::format("\r\033[K[{}] step {}/{}  loss {:.3f}  {:.0f} tok/s  ETA {:.0f}s",
                             t_.options().config.attention, done, t_.total_steps(), info.loss,
                             static_cast<double>(info.tokens_seen) / std::max(el, 1e-9), eta)
              << std::flush;
}

void Progress::end_run() {
    if (!t_.options().quiet) clear_progress_line();
}

void Samples::end_epoch(int64_t) {
    PhaseTimer timer(t_.result().wall.samples);
    const TrainOptions& o = t_.options();
    std::vector<int64_t> ids = t_.tokenizer().encode(o.start_context, true);
    const VocabMap* vocab = t_.vocab_map();  // a compact corpus vocabulary: prompt and sample mapped
    if (vocab) ids = vocab->to_dense(ids, "the start context");
    // The book decodes without a cache; the cached path gives the same greedy tokens
    // (proved on both book runs with "check", docs/pretrained.md, "KV cache") at a fraction of the cost.
    const bool cached = o.sample_kv_cache != "off";
    auto out = models::generate(t_.model(), ids, {.max_new_tokens = o.sample_tokens, .kv_cache = cached});
    if (o.sample_kv_cache == "check") {
        auto book = models::generate(t_.model(), ids, {.max_new_tokens = o.sample_tokens});
        if (book == out) {
            ++t_.result().sample_cache_equal;
        } else {
            ++t_.result().sample_cache_differ;
            std::cerr << "tapegrad: warning: epoch sample with the KV cache differs from the uncached one; "
                         "the uncached one is kept\n";
            out = std::move(book);
        }
    }
    std::string text = t_.tokenizer().decode(vocab ? vocab->to_gpt2(out) : out);
    for (char& c : text)
        if (c == '\n') c = ' ';
    t_.result().samples.push_back(text);
    t_.result().sample_ids.push_back(out);
    if (!o.quiet) {
        clear_progress_line();
        std::cout << text << std::endl;
    }
}

// The second step of a run (step 1): buffers are warm.
void Profile::begin_step(int64_t step) {
    on_ = step == 1;
    if (!on_) return;
    mem_.begin_step();
    set_profiling(true);
    t_step_ = now_s();
}

void Profile::before_backward() {
    if (on_) mem_.after_forward();
}

void Profile::after_backward() {
    if (!on_) return;
    mem_.after_backward();
    t_opt_ = now_s();
}

void Profile::after_update(double) {
    if (!on_) return;
    profile_add(clip_ ? "norm+clip+optim" : "norm+optimizer", now_s() - t_opt_, 0);
    set_profiling(false);
    mem_.after_update();
    print_profile(std::cout, now_s() - t_step_);
    mem_.print(std::cout);
    on_ = false;
}

StandardObservers::StandardObservers(Trainer& t) {
    const TrainOptions& o = t.options();
    bool append = !o.resume_path.empty();
    // A resumed run's files go back to its checkpoint's step: the rows a killed
    // process logged after it are trained again, and must not appear twice.
    if (append && !o.out_dir.empty() && dist::is_root()) {
        cut_csv_rows(o.out_dir + "/metrics.csv", 1, t.position().global_step);
        cut_csv_rows(o.out_dir + "/dynamics.csv", 0, t.position().global_step);
    }
    // Under mpirun rank 0 alone writes files and prints; the other ranks
    // evaluate (their rows of each batch) and probe (their share of G), nothing else.
    const bool root = dist::is_root();
    if (!o.dump_tape.empty() && root)
        dump_ = std::make_unique<TapeDump>(t);  // checks its flags before any file is made
    // The probe reads each head's M_h (nn::Attention::bilinear_heads), an optional
    // capability: a variant without it (uniform attention, most extensions) trains
    // with the probe off, said once, instead of failing.
    int64_t probe_every = o.probe_every;
    if (probe_every > 0 && !t.model().trf_blocks.empty() &&
        t.model().trf_blocks.front()->att->bilinear_heads().empty()) {
        if (root)
            std::cerr << "tapegrad: note: attention '" << o.config.attention
                      << "' exposes no bilinear heads (nn::Attention::bilinear_heads), so --probe-every is "
                         "ignored: this run records no dynamics.csv\n";
        probe_every = 0;
    }
    if (!o.out_dir.empty() && !root && probe_every > 0)
        probe_ = std::make_unique<DynamicsProbe>(t.model(), "", probe_every, append);
    if (!o.out_dir.empty() && root) {
        std::filesystem::create_directories(o.out_dir);
        if (probe_every > 0)
            probe_ = std::make_unique<DynamicsProbe>(t.model(), o.out_dir + "/dynamics.csv", probe_every,
                                                     append);
    }
    enable_probe_pairs(t, probe_.get(), append);
    if (dump_) t.add_observer(dump_.get());
    if (probe_) t.add_observer(probe_.get());
    if (o.profile) {
        size_t floor = 0;  // 16 bytes a parameter: the value, its gradient, AdamW's m and v
        for (const Tensor& p : t.model().parameters()) floor += 16 * static_cast<size_t>(p.numel());
        t.add_observer((profile_ = std::make_unique<Profile>(o.clip > 0, floor)).get());
    }
    t.add_observer((eval_ = std::make_unique<Evaluation>(t)).get());
    if (!o.out_dir.empty() && root)
        t.add_observer(
            (metrics_ = std::make_unique<Metrics>(t, *eval_, o.out_dir + "/metrics.csv", append)).get());
    if (!root) return;
    t.add_observer((progress_ = std::make_unique<Progress>(t)).get());
    t.add_observer((samples_ = std::make_unique<Samples>(t)).get());
    if (o.final_eval_full) t.add_observer((final_eval_ = std::make_unique<FinalEvaluation>(t)).get());
}

}  // namespace tg::train
