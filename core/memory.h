// Memory of a training step: the switch for the savings that change no number,
// and the measurements behind the memory phases of `tapegrad train --profile`.
//
// Above the floor (parameters, gradients, AdamW's m and v) a step's peak is what
// the tape keeps from forward for backward. With memory saving on (the default):
//  - the tape lets go of an intermediate's buffer as soon as nothing but the tape
//    holds the tensor: no handle of the caller and no backward closure captured
//    it (the masked scores, the pre-softmax scores, a residual branch's output);
//    the buffer goes back to the pool during forward instead of after backward;
//  - dropout keeps its mask as bits, not as a float per element;
//  - gelu recomputes tanh u in backward from its saved input instead of saving it;
//  - cross_entropy writes the logits' gradient over the logits (one [N, V]
//    buffer, not two), when nothing but the tape holds them;
//  - attention's dropout-applied weights are freed once their matmul has read
//    them and recomputed in backward from the softmax output and the mask bits
//    (recompute_in_backward); so are the layer norms' outputs (from the norms'
//    saved xhat) and GELU's output (from its saved input);
//  - the pool reuses a parked buffer only for a request of exactly its size
//    (core/storage.cpp), so one step's activations do not take the gradients'
//    buffers and leave them to fresh pages.
// Each saving runs the same code on the same inputs as the saved version, so
// every loss and weight is bit-identical with saving off (tests/test_train.cpp).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tg {

class Storage;
class Tensor;

void set_memory_saving(bool on);
bool memory_saving();

// Resident set size of this process, bytes: now (VmRSS) and the peak (VmHWM)
// since the start or the last reset_peak_rss().
struct Rss {
    size_t current = 0, peak = 0;
};
Rss read_rss();
// Restart the peak at the current RSS (writes "5" to /proc/self/clear_refs,
// Linux >= 4.0). False when the kernel refuses: peaks then stay cumulative.
bool reset_peak_rss();

// Saved tensors by holder. With tracking on, every buffer allocated between two
// recorded entries is charged to the entry recorded next (its output and what
// its closure saved); saved_holders() lists the bytes of those buffers still
// live, per entry of the current tape, largest first. Call it before backward.
struct SavedHolder {
    std::string op, label;
    size_t bytes = 0;
};
void set_track_saved(bool on);
bool track_saved();
std::vector<SavedHolder> saved_holders();

// Recompute instead of keep: free t's buffer now, and have backward recompute
// its values, by the recipe of the op that made them, just before the first
// entry whose backward reads them. The caller promises not to read t's values
// itself before backward. Does nothing (false) with memory saving off, a break
// armed (gdb reads saved values), no recipe for t (only dropout leaves one), or
// another view sharing t's buffer.
bool recompute_in_backward(const Tensor& t);

namespace detail {
// An op's recipe for its recorded output: fill(src, dst) writes the values
// forward computed from src's (contiguous) values, by the same expression (the
// same bits). The recipe holds src weakly, so it keeps nothing alive until
// recompute_in_backward takes it up (and then holds src for backward).
void set_recipe(const Tensor& out, const Tensor& src, std::function<void(const float*, float*)> fill);

// storage.cpp's side of the tracking: buffers allocated since the last take.
void note_allocation(const std::shared_ptr<Storage>& s);
std::vector<std::weak_ptr<Storage>> take_allocations();
}  // namespace detail

}  // namespace tg
