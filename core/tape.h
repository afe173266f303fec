// The tape: a per-thread list of recorded ops in execution order, walked in
// reverse by backward().
#pragma once

#include <functional>
#include <iosfwd>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tg {

// Where a backward closure writes the gradient of one input.
//   data        contiguous buffer in the input's shape, or null when the input
//               needs no gradient (the closure must then skip it);
//   accumulate  false: the buffer is uninitialised (NaN in debug builds of the
//               tests) and the closure must assign every element;
//               true:  the input already has a gradient; the closure must add.
struct GradSlot {
    float* data = nullptr;
    bool accumulate = false;
    const Shape* shape = nullptr;
    explicit operator bool() const { return data != nullptr; }
    // store(i, v): data[i] = v or data[i] += v. Branch, never beta*x: NaN*0 is NaN.
    void store(int64_t i, float v) const {
        if (accumulate)
            data[i] += v;
        else
            data[i] = v;
    }
    float beta() const { return accumulate ? 1.0f : 0.0f; }  // for cblas_sgemm
};

using BackwardFn = std::function<void(const Tensor& grad_out, std::span<GradSlot> grad_in)>;

struct TapeEntry {
    // Interned by record() (intern_op_name): it lives as long as the program, so an
    // extension may pass a temporary string's c_str() as the op name.
    const char* op = "";
    Loc where;
    std::vector<Tensor> inputs;
    Tensor output;
    BackwardFn backward;
    double seconds = 0;  // forward time, filled when profiling
    // With memory saving on (core/memory.h): backward may give input j's
    // gradient the input's own buffer, when the closure computes it element by
    // element from that element alone (cross_entropy: the logits' gradient over
    // the logits) and nothing but the tape and the closure holds the input.
    int grad_over_input = -1;
};

class Tape {
public:
    std::vector<TapeEntry>& entries() { return entries_; }
    uint64_t generation() const { return generation_; }
    void clear();  // frees every entry; tensors made before now cannot backward
    void dump(std::ostream& os) const;
    void to_dot(std::ostream& os) const;
    size_t size() const { return entries_.size(); }

private:
    std::vector<TapeEntry> entries_;
    uint64_t generation_ = 1;
};

Tape& tape();  // this thread's tape

bool grad_enabled();
// Inside a NoGradGuard nothing is recorded (evaluation, optimizer updates).
class NoGradGuard {
public:
    NoGradGuard();
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool prev_;
};

// Labels: modules push their dotted name; ops label outputs "<scope>.<name>".
class LabelScope {
public:
    explicit LabelScope(const std::string& name);
    ~LabelScope();
    LabelScope(const LabelScope&) = delete;
    LabelScope& operator=(const LabelScope&) = delete;
};
const std::string& current_scope();
std::string scoped(const std::string& name);

// Anomaly mode: every recorded op output (forward) and every gradient
// (backward) is checked; the first anomaly throws naming the entry and tensor.
//   NaN  is an anomaly everywhere.
//   Inf  in a forward output is an anomaly when the op made it: none of its
//        inputs holds an Inf (an overflow) and the op did not declare infinities
//        as its documented output (masked_fill(scores, mask, -inf), the causal
//        mask). An Inf carried over from an input was judged where it was made,
//        so the mask's -inf flows through the scaling and softmax unflagged.
//   Inf  in a gradient is always an anomaly.
void set_detect_anomaly(bool on);
bool detect_anomaly();

// Debugger support: when backward reaches an entry whose output label matches
// `label` (an exact label, or a glob such as "trf_blocks.3.att.heads.5.*"; also
// read from the environment variable TAPEGRAD_BREAK_ON), it calls
// tapegrad_backward_break(entry, grad_out) first. `break tapegrad_backward_break`
// in gdb stops there with the entry and its incoming gradient in hand. With
// step >= 0 (TAPEGRAD_BREAK_STEP) only the backward of that step breaks, steps
// being what set_backward_step says (tapegrad train: metrics.csv's numbering,
// also after --resume). A label that matches nothing in the first backward
// after it is set gets a warning on stderr naming the closest labels.
// See core/break_on.h.
void set_break_on(const std::string& label, int64_t step = -1);
// The step number the coming backward belongs to (-1: unnumbered, the default).
void set_backward_step(int64_t step);
int64_t backward_step();

// Per-op timing of the forward and backward of every entry, for --profile.
void set_profiling(bool on);
bool profiling();
struct OpProfile {
    std::string op;
    double forward_s = 0, backward_s = 0;
    int64_t calls = 0;
};
std::vector<OpProfile> take_profile();  // accumulated since the last call
// Print the accumulated profile, most expensive op first, with each op's share
// of `step_seconds`; clears it.
void print_profile(std::ostream& os, double step_seconds);
void profile_add(const char* op, double fwd, double bwd);

// Called by every op after computing `out` from `inputs`. Checks anomalies,
// labels the output and, when grad mode is on and an input requires grad,
// appends the entry and marks `out` as requiring grad. `documented_inf`: the
// op's output holds infinities by design (anomaly mode accepts them).
void record(const char* op, const Loc& loc, std::vector<Tensor> inputs, Tensor& out, BackwardFn backward,
            bool documented_inf = false);
// The one program-lifetime copy of an op name: the same pointer for equal names,
// valid after the caller's string is gone (thread-safe; names are few and short).
const char* intern_op_name(const char* op);
// True when an op with these inputs would be recorded (skip saving otherwise).
bool needs_record(std::initializer_list<const Tensor*> inputs);

// Gradient-ready listener (data parallelism, train/dist/grad_reducer.h). A leaf's gradient
// is final once backward has walked the entry of its LAST USE in the walk,
// which is its FIRST use in the forward: entry index k(leaf) = min { i : leaf is
// an input of entry i }. run_backward computes k for every leaf before the walk
// (only while a listener is set) and, right after walking entry k, calls
// grad_ready(leaf) (leaf->grad may be null: the leaf got no gradient). After
// every entry it calls entry_done(), a place to drive communication progress.
// Leaf hooks still run after the whole walk, as before; grad_ready sees the
// gradient before them (a listener and leaf hooks do not mix).
class BackwardListener {
public:
    virtual ~BackwardListener() = default;
    virtual void grad_ready(TensorImpl* leaf) = 0;
    virtual void entry_done() {}
};
// This thread's listener (null: none, the default). Not owned.
void set_backward_listener(BackwardListener* l);
BackwardListener* backward_listener();

// The reverse walk behind Tensor::backward.
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph, const Loc& loc);

}  // namespace tg

// Out of line and never inlined, so a breakpoint on it always hits.
extern "C++" void tapegrad_backward_break(const tg::TapeEntry& entry, const tg::Tensor& grad_out);
