// `tapegrad train`: one GPT with the book's Chapter 5 loop.
// `tapegrad compare`: several attention variants from the same seed and batch
// order (the first variant draws the order, the others replay it), then report.
// `tapegrad compare --fork-at STEP`: mha to STEP, converted to alt1 (same
// function), both continued on the same batches (train/study/same_function_fork.h), then report.
// Both own their --out folder with a lock (train/run/run_dir.h) and stop cleanly on
// SIGINT/SIGTERM (train/run/stop_policy.h); the exit code says how a run ended: 0, 1
// (an error), 3 (diverged), 130/143 (stopped by SIGINT/SIGTERM).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/blas.h"
#include "nn/attention.h"
#include "models/safetensors.h"
#include "nn/attention.h"
#include "train/cli/commands.h"
#include "train/cli/flags.h"
#include "train/dist/mpi.h"
#include "train/io/json_text.h"
#include "train/report/report_md.h"
#include "train/run/folder_lock.h"
#include "train/run/preflight.h"
#include "train/run/run_dir.h"
#include "train/run/stop_policy.h"
#include "train/run/summary.h"
#include "train/study/sweep.h"
#include "train/run/wall_time.h"
#include "train/study/same_function_fork.h"

namespace tg::cli {
namespace {

// "a, b, c" (not fmt::join: GCC 12 -O3 warns inside fmt's fill parsing).
std::string join_names(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) {
        if (!out.empty()) out += ", ";
        out += n;
    }
    return out;
}

// After a run that ended early, say what was kept; the exit code: 0, 128 +
// signal (130 SIGINT, 143 SIGTERM), or 3 for a diverged run.
int report_end(const train::TrainResult& res, const train::TrainOptions& o) {
    if (res.stopped_by.empty()) return 0;
    std::string kept;
    if (!res.saved_path.empty())
        kept += fmt::format("\n  checkpoint '{}' (step {}; continue with --resume {})", res.saved_path,
                            res.saved_step, res.saved_path);
    if (!o.out_dir.empty() && res.steps > 0)
        kept += fmt::format("\n  '{}/metrics.csv' and '{}/summary.json'", o.out_dir, o.out_dir);
    if (kept.empty()) kept = "\n  nothing (no --save, no --out)";
    if (res.stopped_by == "nonfinite") {
        std::cerr << fmt::format("tapegrad: {}: the run diverged and was stopped (--on-nan skip would skip "
                                 "such steps). No checkpoint "
                                 "of the diverged weights was written. {}{}\n",
                                 res.diverged,
                                 res.saved_path.empty()
                                     ? "No good checkpoint was saved (--save-every N keeps one). Kept:"
                                     : "Kept, the last good checkpoint and the logs:",
                                 kept);
        return 3;
    }
    int sig = res.stopped_by == "SIGTERM" ? SIGTERM : SIGINT;
    std::cerr << fmt::format("tapegrad: stopped by {} after step {} ({} steps in all). Kept:{}\n",
                             res.stopped_by, res.steps - 1, res.steps, kept);
    return 128 + sig;
}

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// train_model() under the command's clock: what the Trainer's own clock does not
// see (preflight, observers' set-up, the command's work before the call since
// `cmd_start`) is start-up, and the total becomes the command's.
train::TrainResult timed_train(const train::TrainOptions& o, Clock::time_point cmd_start) {
    double before = since(cmd_start);
    auto t_call = Clock::now();
    train::TrainResult res = train::train_model(o);
    double call = since(t_call);
    res.wall.startup += before + (call - res.wall.total);
    res.wall.total = before + call;
    return res;
}

// A lock under mpirun: rank 0 alone takes it (it alone writes there) and tells
// the others, so a refusal ends every rank alike.
template <class Take>
void lock_on_root(Take&& take) {
    std::string refused;
    if (dist::is_root()) try {
            take();
        } catch (const std::exception& e) {
            refused = e.what();
            if (dist::world() == 1) throw;
        }
    dist::broadcast(refused);
    if (!refused.empty()) throw Error(refused);
}

void lock_run_dir(std::optional<train::RunDirLock>& lock, const std::string& dir, bool overwrite,
                  bool resume) {
    lock_on_root([&] { lock.emplace(dir, "--out", overwrite, resume); });
}

// Two runs never write one --save checkpoint: ".NAME.lock" beside it.
void lock_save(std::optional<train::LockFile>& lock, const std::string& save) {
    if (!save.empty()) lock_on_root([&] { lock.emplace(train::lock_path_for(save), "--save", save); });
}

int run_train(TrainFlags& f) {
    const auto cmd_start = Clock::now();
    train::install_stop_handlers();
    train::TrainOptions o = finish(f);
    train::preflight(o);  // before the lock: a refused value creates nothing
    if (!o.quiet && dist::is_root())
        fmt::print("train: {} ({} threads)\n", o.config.describe(), num_threads());
    std::optional<train::LockFile> save_lock;
    lock_save(save_lock, o.save_path);
    std::optional<train::RunDirLock> lock;
    if (!o.out_dir.empty()) lock_run_dir(lock, o.out_dir, o.overwrite, !o.resume_path.empty());
    o.on_first_step = [&lock] {
        if (lock) lock->keep_new();  // --overwrite: the old run goes once the new one has started
    };
    auto res = timed_train(o, cmd_start);
    if (!o.out_dir.empty() && res.steps > 0 && dist::is_root()) train::write_summary(o.out_dir, o, res);
    if (res.stopped_by.empty())
        fmt::print("{} parameters, {} steps, {:.3f} s/step, {:.0f} tokens/s, {} threads\n",
                   res.num_parameters, res.steps,
                   res.steps ? res.train_seconds / static_cast<double>(res.steps) : 0.0,
                   res.train_seconds > 0 ? static_cast<double>(res.tokens_seen) / res.train_seconds : 0.0,
                   num_threads());
    if (dist::is_root()) fmt::print("{}", res.wall.format("wall time"));
    return report_end(res, o);
}

// compare without --out: runs/compare, or the first runs/compare-N that holds
// no run, so running it twice never overwrites the first results.
std::string variant_folder(const std::string& v) { return train::parse_variant(v).folder(); }

std::string fresh_compare_dir(const std::vector<std::string>& variants) {
    for (int n = 1;; ++n) {
        std::string d = n == 1 ? "runs/compare" : fmt::format("runs/compare-{}", n);
        bool taken = std::filesystem::exists(d + "/report.md");
        for (auto& v : variants) taken = taken || train::holds_run(d + "/" + variant_folder(v));
        if (!taken) return d;
    }
}

// A compare variant: an attention name (the shared flags apply as far as they
// fit it, as its traits say: --qk-dim, --init-gain and --uniform-attention to a
// variant with query/key factors (mha), --init to one with a product init (alt1)),
// or a sweep-style spec such as alt1:init=product:out-proj=off (train/study/sweep.h).
train::TrainOptions variant_options(TrainFlags& f, const std::string& v, std::optional<int64_t> qk_dim) {
    const ConfigFlags saved = f.cfg;
    train::SweepVariant sv = train::parse_variant(v);
    f.cfg.attention = sv.attention;
    const nn::AttentionTraits* t = nn::find_attention_traits(sv.attention);  // unknown: refused later
    bool factors = t && t->qk_factors, product = t && !t->product_of.empty();
    f.cfg.qk_dim = factors ? qk_dim : std::nullopt;
    if (!factors) {
        f.cfg.init_gain = 1.0f;
        f.cfg.uniform_attention = false;
    }
    if (!product) f.cfg.init = "default";
    train::TrainOptions o = finish(f);
    f.cfg = saved;
    if (v.find(':') != std::string::npos) sv.apply(o);
    return o;
}

// compare's variants before anything trains: each known, none twice (a
// variant's folder is its name).
void check_variants(const std::vector<std::string>& variants) {
    std::vector<std::string> known = nn::attention_names();
    for (size_t i = 0; i < variants.size(); ++i) {
        const std::string attention = train::parse_variant(variants[i]).attention;  // a spec's keys checked too
        if (std::find(known.begin(), known.end(), attention) == known.end())
            throw Error(fmt::format("tapegrad: compare --variants: unknown attention '{}' (known: {})",
                                    attention, join_names(known)));
        if (std::find(variants.begin(), variants.begin() + static_cast<long>(i), variants[i]) !=
            variants.begin() + static_cast<long>(i))
            throw Error(fmt::format("tapegrad: compare --variants: '{}' is given twice; each variant trains "
                                    "once, into its own folder",
                                    variants[i]));
    }
}

int run_compare(TrainFlags& f, std::string out, const std::vector<std::string>& variants) {
    auto cmd_start = Clock::now();
    check_variants(variants);
    train::install_stop_handlers();
    if (out.empty()) {
        out = fresh_compare_dir(variants);
        fmt::print("compare: writing to {} (--out to choose the folder)\n", out);
    }
    // --qk-dim shapes mha's factors; the other variants have none and ignore it.
    const std::optional<int64_t> qk_dim = f.cfg.qk_dim;
    for (const auto& v : variants) {  // every variant's values and paths before the first step
        train::TrainOptions o = variant_options(f, v, qk_dim);
        o.out_dir = out + "/" + variant_folder(v);
        train::preflight(o);
    }
    std::optional<train::RunDirLock> lock;
    lock_run_dir(lock, out, f.opt.overwrite, false);
    std::vector<std::vector<int64_t>> orders;
    train::WallTime whole;  // every variant's parts, the report, and the command's clock
    nlohmann::json wall_json;
    for (size_t i = 0; i < variants.size(); ++i) {
        train::TrainOptions o = variant_options(f, variants[i], qk_dim);
        o.out_dir = out + "/" + variant_folder(variants[i]);
        o.save_path = o.out_dir + "/model.safetensors";
        std::optional<train::RunDirLock> vlock;
        lock_run_dir(vlock, o.out_dir, o.overwrite, false);
        o.on_first_step = [&vlock] {
            if (vlock) vlock->keep_new();
        };
        // The first variant draws the batch order; the others replay it.
        if (i == 0)
            o.record_orders = &orders;
        else
            o.replay_orders = &orders;
        fmt::print("== {} ({}; {} threads) ==\n", variants[i], o.config.describe(), num_threads());
        auto res = timed_train(o, cmd_start);
        cmd_start = Clock::now();  // the next variant's start-up begins here
        if (res.steps > 0 && dist::is_root()) train::write_summary(o.out_dir, o, res);
        whole += res.wall;
        wall_json[variants[i]] = res.wall.to_json();
        if (dist::is_root()) fmt::print("{}", res.wall.format(variants[i] + " wall time"));
        if (int code = report_end(res, o); code != 0) return code;  // no later variant, no report
        fmt::print("{}: {} parameters, {:.3f} s/step, {:.0f} s in all\n", variants[i], res.num_parameters,
                   res.steps ? res.train_seconds / static_cast<double>(res.steps) : 0.0, res.seconds);
    }
    if (dist::is_root()) {
        std::string html;
        double report_s = 0;
        {
            train::PhaseTimer timer(report_s);
            html = train::write_report(out);
        }
        whole.report += report_s;
        whole.total += since(cmd_start);  // the report and what preceded it since the last variant
        fmt::print("wrote {}/report.md and plots\n{}\n", out, html);
        fmt::print("{}", whole.format("compare wall time"));
        wall_json["compare"] = whole.to_json();
        train::write_json_file(out + "/wall_time.json", wall_json);
    }
    return 0;
}

// compare --fork-at: dropout is 0 unless asked otherwise (then refused by
// check_fork, which says why); mha with out_proj is the trunk.
int run_fork(TrainFlags& f, std::string out, int64_t fork_at) {
    if (dist::world() > 1)  // the fork converts and copies files between branches on one process
        throw Error("tapegrad: compare --fork-at runs as one process, not under mpirun -np " +
                    std::to_string(dist::world()));
    train::install_stop_handlers();
    if (!f.cfg.drop_rate) f.cfg.drop_rate = 0.0f;
    f.cfg.attention = "mha";
    train::TrainOptions o = finish(f);
    train::check_fork(o, fork_at);
    if (out.empty()) {
        out = fresh_compare_dir({"mha", "alt1"});
        fmt::print("compare: writing to {} (--out to choose the folder)\n", out);
    }
    o.out_dir = out + "/mha";
    train::preflight(o);
    // train_fork locks (and so creates) the folders once the fork is known to fit the run.
    fmt::print("== mha trunk to step {} ({}) ==\n", fork_at, o.config.describe());
    train::ForkResult r = train::train_fork(o, out, fork_at);
    if (r.stopped == "trunk") return report_end(r.trunk, o);
    for (bool merged : {false, true}) {
        const train::TrainResult& res = merged ? r.alt1 : r.mha;
        const train::TrainOptions& bo = merged ? r.alt1_options : r.mha_options;
        if (res.steps > 0) train::write_summary(bo.out_dir, bo, res);
        if (int code = report_end(res, bo); code != 0) return code;
        fmt::print("{} branch: {} parameters, {:.3f} s/step\n", merged ? "alt1" : "mha", res.num_parameters,
                   res.steps ? res.train_seconds / static_cast<double>(res.steps) : 0.0);
    }
    train::write_report(out);
    fmt::print("wrote {}/report.md and plots (the branches part at step {})\n", out, fork_at);
    return 0;
}

}  // namespace

Command train_command() {
    return {"train", "train one GPT with the book's Chapter 5 loop", [](CLI::App& sub) -> Action {
                auto f = std::make_shared<TrainFlags>();
                f->opt.data_path.clear();
                f->opt.vocab_dir.clear();
                f->opt.probe_every = 0;
                add_train_flags(&sub, *f, true);
                sub.add_option("--save", f->opt.save_path,
                               "write a checkpoint here at the end (model, optimizer, RNG, position)");
                sub.add_option("--resume", f->opt.resume_path,
                               "continue a run from a checkpoint written by --save");
                sub.add_option("--out", f->opt.out_dir,
                               "run folder for metrics.csv, dynamics.csv, summary.json (owned by one run: "
                               "a finished run needs --overwrite or --resume)");
                sub.add_option(
                       "--save-every", f->opt.save_every,
                       "also rewrite the --save checkpoint (atomically) every N steps: a crash loses at "
                       "most N")
                    ->check(at_least(0));
                auto* dump = sub.add_option("--dump-tape", f->opt.dump_tape,
                                            "write one step's tape here before backward (text: every entry's "
                                            "op, label, inputs, call site) and FILE.dot (Graphviz)");
                sub.add_option(
                       "--dump-tape-step", f->opt.dump_tape_step,
                       "the step --dump-tape writes, numbered as in metrics.csv (default: the run's first)")
                    ->check(CLI::NonNegativeNumber)
                    ->needs(dump);
                return [f] { return run_train(*f); };
            }};
}

Command compare_command() {
    return {"compare", "train mha and alt1 from the same seed and batch order, then report",
            [](CLI::App& sub) -> Action {
                auto f = std::make_shared<TrainFlags>();
                auto out = std::make_shared<std::string>();  // empty: runs/compare or runs/compare-N
                auto variants =
                    std::make_shared<std::vector<std::string>>(std::vector<std::string>{"mha", "alt1"});
                f->opt.data_path.clear();
                f->opt.vocab_dir.clear();
                f->opt.probe_every = 20;  // alt1 probing is 144 full SVDs: ~7% of its run at 20, 14% at 10
                add_train_flags(&sub, *f, false);
                sub.add_option(
                    "--out", *out,
                    "run directory (one folder per variant, report.md, plots); default runs/compare, "
                    "or the first free runs/compare-N when that holds a run");
                auto* vopt = sub.add_option("--variants", *variants,
                                            "attention variants to compare, the first sets the batch order "
                                            "(mha alt1 or mha,alt1)")
                                 ->delimiter(',')
                                 ->capture_default_str();
                auto fork_at = std::make_shared<std::optional<int64_t>>();
                sub.add_option(
                       "--fork-at", *fork_at,
                       "train mha (with out_proj) to step STEP, convert it to alt1 with out_proj (the same "
                       "function), then continue both on the same batches: differences after STEP are the "
                       "parametrisation alone. Both branches restart AdamW's moments at the fork (alt1's S "
                       "has none to inherit; treating mha alike keeps the restart out of the comparison); "
                       "dropout is 0 (alt1 draws its per-head masks in another order). Must be >= 1 and "
                       "before the run's last step")
                    ->excludes(vopt);
                return [f, out, variants, fork_at] {
                    if (*fork_at) return run_fork(*f, *out, **fork_at);
                    return run_compare(*f, *out, *variants);
                };
            }};
}

}  // namespace tg::cli
