// Where a run's wall time goes. `make train` is what a user times, and the
// optimizer steps are only part of it: the breakdown splits the run into
//   startup      tokenizer, data (tokenized text or shards), model init, --init-from,
//                --resume, observers: everything before the first step
//   steps        optimizer steps (forward, backward, update), the probe's share excluded
//   eval         the eval_freq evaluations (no-tape forwards of eval_iter batches)
//   samples      the per-epoch greedy samples
//   probe        the dynamics probe (it runs inside steps; taken out of `steps`)
//   checkpoints  --save / --save-every writes
//   metrics      metrics.csv rows and the progress line
//   report       summary.json, and for compare report.md, report.html and the plots
// Each part is measured where it happens; `total` is measured on its own (the
// command's whole clock), so total - sum(parts) is time nobody claimed (loop
// bookkeeping), printed as "unaccounted" and small by construction of the test.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace tg::train {

struct WallTime {
    double startup = 0, steps = 0, eval = 0, samples = 0, probe = 0, checkpoints = 0, metrics = 0, report = 0;
    double total = 0;  // measured separately, not the sum

    double sum() const { return startup + steps + eval + samples + probe + checkpoints + metrics + report; }
    WallTime& operator+=(const WallTime& o);
    // {"startup": .., ..., "total": .., "unaccounted": ..} in seconds.
    nlohmann::json to_json() const;
    // One line per part with its share of the total, for the end of a run.
    std::string format(const std::string& title) const;
};

// Adds the seconds of its own lifetime to a WallTime field.
class PhaseTimer {
public:
    explicit PhaseTimer(double& into) : into_(into), t0_(std::chrono::steady_clock::now()) {}
    ~PhaseTimer() { into_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
    PhaseTimer(const PhaseTimer&) = delete;
    PhaseTimer& operator=(const PhaseTimer&) = delete;

private:
    double& into_;
    std::chrono::steady_clock::time_point t0_;
};

}  // namespace tg::train
