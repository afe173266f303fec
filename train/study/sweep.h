// `tapegrad sweep`: a grid of variants x learning rates x seeds, run one after
// another in one process, each run in its own folder, resumable.
//
// A variant is an attention name with optional overrides, written
//   mha   alt1   mha:out-proj=off   alt1:out-proj=on   mha:qk-dim=128:out-proj=off
// and its folder name is the spec with ':' turned into '+'. The keys:
//   out-proj=on|off   the output projection
//   qk-dim=R          mha: query/key width per head
//   init=product      alt1: S_h from the factors mha with qk-dim C draws (models/gpt.h)
//   init-gain=G       mha: W_query and W_key scaled by G after init
//   scores=zero       mha: uniform causal attention (no query, no key)
//   wd=X              this variant's weight decay
//   eval-seeds=N      evaluated on the first N evaluation seeds only
//   lr-from=NAME      no selection runs: evaluated at the lr chosen for variant NAME
//   name=NAME         the variant's short name in reports and in lr-from (default: the spec)
// The answer's arms (docs/results.md) are such specs, e.g. B is
// mha:qk-dim=128:out-proj=off:name=B.
//
// Two phases (the design a reviewer expects, so the learning rate is not chosen
// on the seeds that measure the result):
//   selection   every variant at every lr on the selection seeds; per variant the
//               lr with the lowest mean final validation loss is chosen;
//   evaluation  every variant at its chosen lr on the evaluation seeds (when no
//               evaluation seeds are given, the selection seeds are reused and the
//               report says that the figures are then optimistic).
// Pairing: for one seed every variant trains on the same batches. The first
// variant draws the batch order (from the seeded generator after its init, as a
// single run does) and writes it to orders/seed<S>.json; the others replay it
// (as `compare` does). The order does not depend on the lr.
//
// Layout: OUT/runs/<variant>/lr<lr>/seed<S>/ holds the run's metrics.csv,
// dynamics.csv, summary.json and, written atomically last, done.json. A run
// without done.json was killed: its folder is removed and the run starts again.
// done.json records the run's full configuration (train/run/summary.h): a run is
// reused only if it equals the one this sweep would train; otherwise the sweep is
// refused naming the settings that differ, or (--overwrite) trains it again.
// OUT/summary.csv has one row per finished run; OUT/report.md is written from
// the finished runs (train/report/sweep_report.h).
#pragma once

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "train/loop/trainer.h"

namespace tg::train {

struct SweepVariant {
    std::string spec;  // as given, e.g. "mha:out-proj=off"
    std::string attention;
    std::optional<bool> out_proj;
    std::optional<int64_t> qk_dim;  // "qk-dim=R", mha only
    std::string init = "default";
    float init_gain = 1.0f;
    bool uniform = false;                 // scores=zero
    std::optional<double> weight_decay;   // wd=X
    std::optional<int64_t> eval_seeds;    // eval-seeds=N
    std::string lr_from;                  // lr-from=NAME ("" : selected on its own)
    std::string name;                     // name=NAME ("": the spec)
    std::string folder() const;
    const std::string& label() const { return name.empty() ? spec : name; }
    bool selected() const { return lr_from.empty(); }
    // The run's options: attention, config overrides and weight decay on top of base.
    void apply(TrainOptions& o) const;
};

// Throws naming the spec and the part it does not understand.
SweepVariant parse_variant(const std::string& spec);

struct SweepPlan {
    TrainOptions base;  // every setting but attention, out_proj, lr, seed, out_dir
    std::vector<SweepVariant> variants;
    std::vector<double> lrs;
    std::vector<uint64_t> selection_seeds, eval_seeds;  // eval_seeds empty: reuse selection seeds
    std::string out_dir;
    int64_t max_runs = -1;  // stop after this many runs in this invocation (-1: all)
    // Learning rates that bracket: while a selected variant's best rate is the
    // lowest or highest it tried, try half or twice that rate as well (at most
    // max_extensions times per variant). Each variant then has its own grid.
    bool extend_lrs = false;
    int max_extensions = 3;
    // The report's primary contrasts (variant names, first minus second), fixed
    // before the runs, and the smallest effect of interest for equivalence tests.
    std::vector<std::pair<std::string, std::string>> contrasts;
    double sesoi = 0.02;
};

// One finished run, as done.json and summary.csv record it.
struct SweepRun {
    std::string variant;
    double lr = 0;
    uint64_t seed = 0;
    int64_t num_parameters = 0, steps = 0;
    double tokens_per_second = 0, seconds = 0;
    double final_val_loss = 0, best_val_loss = 0, final_train_loss = 0;
    double full_val_loss = NAN;  // the final evaluation over the whole validation split (NaN: none)
    std::string dir;  // the run's folder
};

std::string lr_folder(double lr);  // "lr4e-04"
std::string run_dir(const std::string& out, const SweepVariant& v, double lr, uint64_t seed);

// Runs what is not finished yet; returns the number of runs trained now (over
// all ranks). Writes summary.csv after each run (round) and the report at the
// end (when all ran). A SIGINT/SIGTERM (train/run/stop_policy.h, when installed) ends
// the sweep after the runs in flight: the stopped runs get no done.json (a rerun
// trains them again), and *stop_signal, when given, says which signal (else 0).
//
// Under mpirun -np N the runs are spread over the ranks: rank 0 picks a round of
// up to N pending runs (the grid's order, a variant other than the first only
// once its seed's order is recorded), each rank trains one as a single process
// (dist::SoloScope: world 1, no data parallelism), then the ranks agree on the
// round's end: a stop signal on any rank, or a failed run (its message reaches
// every rank, the sweep ends with it), stops all after the round. A run that
// stopped or failed sends the others a stop notice at once (dist::StopNotices,
// polled by should_stop() between steps), so the round ends promptly. Rank 0 alone
// writes summary.csv, chooses the lrs and writes the report. OUT must be one
// folder all ranks see (a shared file system across hosts).
int64_t run_sweep(const SweepPlan& plan, int* stop_signal = nullptr);

// The sweep's state files as the sweep reads them: a done.json's text (a
// finished run; dir is the run's folder) and an orders/seed<S>.json's (one
// window order per epoch). Anything else is refused with tg::Error naming path.
SweepRun read_done_json(const std::string& text, const std::string& path, const std::string& dir);
std::vector<std::vector<int64_t>> read_orders_json(const std::string& text, const std::string& path);

// The finished runs under OUT (reads done.json files).
std::vector<SweepRun> finished_runs(const std::string& out_dir);

// The loss a run is selected and compared by: the final evaluation over the
// whole validation split when the run made one, else the last eval_iter estimate.
double selection_loss(const SweepRun& r);

// The learning rates a selected variant tries: plan.lrs, extended at an edge
// while plan.extend_lrs says so and the finished selection runs put the best
// rate there (deterministic from the finished runs, so a resumed sweep derives
// the same grid). A diverged lr (NaN loss) counts as the worst.
std::vector<double> variant_grid(const SweepPlan& plan, const SweepVariant& v,
                                 const std::vector<SweepRun>& runs);

// Per variant (in plan order), the lr with the lowest mean selection_loss over
// the selection seeds on its grid; an lr-from variant takes the lr chosen for
// the variant it names. Empty when a selection run is missing.
std::vector<std::pair<std::string, double>> chosen_lrs(const SweepPlan& plan,
                                                       const std::vector<SweepRun>& runs);

// The evaluation seeds a variant runs: the plan's (or the selection seeds when
// none), the first eval-seeds=N of them when the variant says so.
std::vector<uint64_t> variant_eval_seeds(const SweepPlan& plan, const SweepVariant& v);

}  // namespace tg::train
