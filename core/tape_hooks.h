// The seams between the tape's engine (core/tape.cpp: record, the backward
// walk, no-grad, labels) and the features that ride on it, each in a file of
// its own next to it:
//   core/anomaly.cpp    anomaly mode: the forward and backward checks
//   core/profiling.cpp  --profile's per-op timings
//   core/memory.cpp     memory saving: early release of activations, recompute
//                       recipes, and the saved-tensor tracking behind --profile
//   core/tape_dump.cpp  Tape::dump and Tape::to_dot
//   core/gdb_hook.cpp   tapegrad_backward_break and the gdb auto-load section
// The engine calls these at fixed points of record() and of the walk; nothing
// else should. Internal: not part of the API an extender uses.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/tape.h"

namespace tg {
class Storage;
namespace detail {

// "'label' [shape]", or "'(unlabelled)' [shape]": how messages name a tensor.
std::string describe(const Tensor& t);

// Anomaly mode (core/anomaly.cpp; what counts is documented in core/tape.h).
void check_forward_anomaly(const char* op, const Loc& loc, const std::vector<Tensor>& inputs,
                           const Tensor& out, bool documented_inf);
// After entry e's closure wrote the gradients of its inputs through `slots`.
void check_backward_anomaly(const TapeEntry& e, std::span<const GradSlot> slots);

// Profiling (core/profiling.cpp): charge the time since the last mark to op's forward.
void profile_forward(const char* op);

// Memory saving (core/memory.cpp), on this thread's tape only.
void memory_tape_cleared();                    // Tape::clear of this thread's tape
void release_note(const TapeEntry& e);         // e was just recorded: count its handles, release
bool release_active();                         // early release is tracking this tape
int64_t release_tape_handles(const TensorImpl* impl);  // handles the tape's entries hold on impl
void release_forget(const TapeEntry& e);       // e was walked and drops its handles
void release_flush();                          // the last releases of forward, before the walk
void rematerialize_inputs(const TapeEntry& e);  // refill inputs recompute_in_backward freed
// With tracking on: the buffers allocated for entry n_entries - 1.
void saved_note(size_t n_entries, std::vector<std::weak_ptr<Storage>> allocs);

}  // namespace detail
}  // namespace tg
