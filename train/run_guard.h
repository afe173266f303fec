// The two decisions that end a run early, each made in ONE function so that a
// multi-process run can later make them collective (all ranks stop together):
//
//   should_stop()   SIGINT or SIGTERM arrived. The handler only sets a flag; the
//                   training loop asks between steps, so the step in flight
//                   finishes, then the run writes its checkpoint (--save) and
//                   summary, says what it kept, and exits 128 + signal (130, 143).
//                   The handler re-arms the default action: a second Ctrl-C kills.
//
//   judge_step()    a step's loss or gradient norm is NaN/Inf. The default
//                   (--on-nan stop) ends the run naming the step, keeps the last
//                   good checkpoint and writes none of the diverged weights;
//                   --on-nan skip drops the step (no update) and counts it.
#pragma once

#include <cstdint>
#include <string>

namespace tg::train {

// SIGINT/SIGTERM -> flag. Idempotent; call before the first step.
void install_stop_handlers();
bool should_stop();
int stop_signal();  // the signal that asked to stop, or 0
// Reset the flag and handlers (tests; a new run in the same process).
void reset_stop();

enum class OnNan { stop, skip };
OnNan parse_on_nan(const std::string& s);  // "stop" | "skip", else throws naming --on-nan

enum class StepVerdict { ok, skip, stop };
// The one judgement of a step's numbers (see above).
StepVerdict judge_step(double loss, double grad_norm, OnNan policy);

// Thrown by the trainer when a run stops on a non-finite value; the CLI maps it
// to exit code 3.
struct Diverged {
    std::string message;
};

}  // namespace tg::train
