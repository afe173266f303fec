// The standard observers of a training run (train/loop/observer.h), each one job:
//   Evaluation   every eval_freq steps (from step 0): mean loss over eval_iter
//                batches of each loader, in eval mode with no tape; prints the
//                book's "Ep 1 (Step 000000): Train loss .., Val loss .." lines
//   Metrics      one flushed row of <out>/metrics.csv per step, and <out>/run_id
//                with the first (a resumed run's CSVs are cut back to its
//                checkpoint's step first)
//   Progress     the one-line progress display on a terminal
//   Samples      after each epoch a greedy sample from the start context
//   Profile      --profile: a per-op and per-phase memory profile of the second
//                step (warm buffers)
// plus the dynamics probe (train/study/probe.h) when probe_every > 0 and the tape dump
// (train/observers/tape_dump.h) for --dump-tape. StandardObservers
// builds the ones a TrainOptions asks for and attaches them in that order.
#pragma once

#include <memory>
#include <optional>

#include "train/loop/trainer.h"
#include "train/observers/final_eval.h"
#include "train/observers/memory_profile.h"
#include "train/observers/metrics_csv.h"
#include "train/observers/tape_dump.h"
#include "train/study/probe.h"

namespace tg::train {

class Evaluation : public StepObserver {
public:
    explicit Evaluation(Trainer& t) : t_(t) {}
    void end_step(const StepInfo& info) override;
    // The train and val loss if this step evaluated (read by Metrics).
    const std::optional<EvalPoint>& this_step() const { return this_step_; }

private:
    Trainer& t_;
    std::optional<EvalPoint> this_step_;
};

class Metrics : public StepObserver {
public:
    Metrics(Trainer& t, const Evaluation& eval, const std::string& path, bool append)
        : t_(t), eval_(eval), writer_(path, append) {}
    void end_step(const StepInfo& info) override;

private:
    Trainer& t_;
    const Evaluation& eval_;
    MetricsWriter writer_;
    bool wrote_id_ = false;  // <out>/run_id, written with the first row
};

class Progress : public StepObserver {
public:
    explicit Progress(Trainer& t) : t_(t) {}
    void end_step(const StepInfo& info) override;
    void end_run() override;

private:
    Trainer& t_;
};

class Samples : public StepObserver {
public:
    explicit Samples(Trainer& t) : t_(t) {}
    void end_epoch(int64_t epoch) override;

private:
    Trainer& t_;
};

class Profile : public StepObserver {
public:
    // floor_bytes: parameters + gradients + AdamW m, v (train/observers/memory_profile.h).
    Profile(bool clip, size_t floor_bytes) : clip_(clip), mem_(floor_bytes) {}
    void begin_step(int64_t step) override;
    void before_backward() override;
    void after_backward() override;
    void after_update(double lr) override;
    const MemoryProfile& memory() const { return mem_; }

private:
    bool clip_, on_ = false;
    double t_step_ = 0, t_opt_ = 0;
    MemoryProfile mem_;
};

class StandardObservers {
public:
    explicit StandardObservers(Trainer& t);
    double probe_seconds() const { return probe_ ? probe_->seconds() : 0.0; }

private:
    std::unique_ptr<TapeDump> dump_;
    std::unique_ptr<DynamicsProbe> probe_;
    std::unique_ptr<Profile> profile_;
    std::unique_ptr<Evaluation> eval_;
    std::unique_ptr<Metrics> metrics_;
    std::unique_ptr<Progress> progress_;
    std::unique_ptr<Samples> samples_;
    std::unique_ptr<FinalEvaluation> final_eval_;
};

}  // namespace tg::train
