// Observers of the training loop: everything that is not the step itself
// (evaluation, metrics.csv, the progress line, per-epoch samples, the per-op
// profile, the gradient dynamics probe of train/study/probe.h) attaches to a Trainer
// through this interface. The Trainer calls them, in the order they were added:
//   begin_step(step) -> forward, loss -> before_backward() -> backward ->
//   after_backward() -> [clip] ->
//   before_update() -> optimizer.step() -> after_update(lr) -> end_step(info)
// then end_epoch(epoch) after an epoch's last batch and end_run() once, before
// the final checkpoint is written. Steps are numbered as metrics.csv numbers
// them: 0 for the first optimizer step of a run, continuing after --resume.
#pragma once

#include <cstdint>

namespace tg::train {

// What one finished optimizer step reports.
struct StepInfo {
    int64_t epoch = 0;        // 0-based epoch the step belongs to
    int64_t step = 0;         // metrics.csv's step number
    int64_t tokens_seen = 0;  // input tokens of all steps so far, this one included
    double loss = 0;          // the training batch's loss
    double lr = 0;            // the learning rate the step used
    double grad_norm = 0;     // global gradient norm before clipping
};

class StepObserver {
public:
    virtual ~StepObserver() = default;
    virtual void begin_step(int64_t /*step*/) {}
    virtual void before_backward() {}  // the step's whole tape is recorded, not yet walked
    virtual void after_backward() {}
    virtual void before_update() {}
    virtual void after_update(double /*lr*/) {}
    virtual void end_step(const StepInfo& /*info*/) {}
    virtual void end_epoch(int64_t /*epoch*/) {}
    virtual void end_run() {}
};

}  // namespace tg::train
