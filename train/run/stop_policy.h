// The two decisions that end a run early, each made in ONE function, and agreed
// by all ranks under mpirun (all ranks stop together, none waits forever in a
// collective):
//
//   should_stop()   SIGINT or SIGTERM arrived. The handler only sets a flag; the
//                   training loop asks between steps, so the step in flight
//                   finishes, then the run writes its checkpoint (--save) and
//                   summary, says what it kept, and exits 128 + signal (130, 143).
//                   The handler re-arms the default action: a second Ctrl-C kills.
//                   Under mpirun it is collective (a max over the ranks' flags):
//                   every rank must call it at the same point, between steps.
//
//   judge_step()    a step's loss or gradient norm is NaN/Inf. The default
//                   (--on-nan stop) ends the run naming the step, keeps the last
//                   good checkpoint and writes none of the diverged weights;
//                   --on-nan skip drops the step (no update) and counts it.
//                   Under mpirun its inputs are the global batch's loss and the
//                   norm of the averaged gradient, the same numbers on every
//                   rank (train/dist/grad_reducer.h), so every rank reaches the same verdict
//                   at the same step without a message.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace tg::train {

// SIGINT/SIGTERM -> flag. Idempotent; call before the first step.
void install_stop_handlers();
bool should_stop();
// Another source of stop requests, polled by should_stop() between steps while
// set: a signal number (as if that signal had arrived), or 0. The MPI sweep
// sets it to another rank's stop notice (dist::StopNotices). nullptr: none.
void set_stop_source(std::function<int()> source);
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
