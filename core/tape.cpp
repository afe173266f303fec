// The tape's engine: record() appends an entry, run_backward walks the
// entries in reverse and calls each closure with the gradient slots of its
// inputs; no-grad mode and label scopes. Everything that rides on the walk
// (anomaly mode, profiling, memory saving, dumps, the gdb hook) lives in its
// own file and is reached through core/tape_hooks.h.
#include "core/tape.h"

#include "core/break_on.h"
#include "core/memory.h"
#include "core/tape_hooks.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <ostream>
#include <unordered_map>
#include <unordered_set>

namespace tg {
namespace {

thread_local Tape t_tape;
thread_local bool t_grad_enabled = true;
thread_local std::vector<std::string> t_scopes;
thread_local std::string t_scope_str;
}  // namespace

namespace detail {
std::string describe(const Tensor& t) {
    return fmt::format("'{}' {}", t.label().empty() ? "(unlabelled)" : t.label(), shape_str(t.shape()));
}
}  // namespace detail
using detail::describe;

Tape& tape() { return t_tape; }

void Tape::clear() {
    entries_.clear();
    generation_++;
    if (this == &t_tape) detail::memory_tape_cleared();
}

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = prev_; }

static void rebuild_scope() {
    t_scope_str.clear();
    for (const auto& s : t_scopes) {
        if (s.empty()) continue;
        if (!t_scope_str.empty()) t_scope_str += '.';
        t_scope_str += s;
    }
}
LabelScope::LabelScope(const std::string& name) {
    t_scopes.push_back(name);
    rebuild_scope();
}
LabelScope::~LabelScope() {
    t_scopes.pop_back();
    rebuild_scope();
}
const std::string& current_scope() { return t_scope_str; }
std::string scoped(const std::string& name) { return t_scope_str.empty() ? name : t_scope_str + "." + name; }

bool needs_record(std::initializer_list<const Tensor*> inputs) {
    if (!t_grad_enabled) return false;
    for (const Tensor* t : inputs)
        if (t->defined() && t->requires_grad()) return true;
    return false;
}

const char* intern_op_name(const char* op) {
    // Node-based: an element's c_str() stays put as the set grows. A name set is
    // program state by nature (op names are code, not a run's data).
    static std::mutex m;
    static std::unordered_set<std::string> names;
    std::lock_guard lock(m);
    return names.emplace(op).first->c_str();
}

void record(const char* op, const Loc& loc, std::vector<Tensor> inputs, Tensor& out, BackwardFn backward,
            bool documented_inf) {
    if (out.label().empty()) out.set_label(scoped(op));
    if (profiling()) detail::profile_forward(op);
    if (detect_anomaly()) detail::check_forward_anomaly(op, loc, inputs, out, documented_inf);
    std::vector<std::weak_ptr<Storage>> allocs;
    if (track_saved()) allocs = detail::take_allocations();
    if (!t_grad_enabled) return;
    bool any = false;
    for (const Tensor& t : inputs) {
        if (!t.defined() || !t.requires_grad()) continue;
        any = true;
        if (!t.is_leaf() && t.impl()->generation != t_tape.generation())
            fail(op, loc,
                 fmt::format("input {} was made on a tape that backward() has freed; "
                             "recompute it, or call backward(retain_graph=true)",
                             describe(t)));
    }
    if (!any) return;
    out.impl()->requires_grad = true;
    out.impl()->entry = static_cast<int64_t>(t_tape.entries().size());
    out.impl()->generation = t_tape.generation();
    t_tape.entries().push_back(
        TapeEntry{intern_op_name(op), loc, std::move(inputs), out, std::move(backward)});
    if (track_saved()) detail::saved_note(t_tape.entries().size(), std::move(allocs));
    if (memory_saving() && !detail::break_armed()) detail::release_note(t_tape.entries().back());
}

// Apply a tensor's hooks to its (complete) gradient; a hook may replace it.
static void apply_hooks(TensorImpl* impl, const TapeEntry* e) {
    for (auto& hook : impl->hooks) {
        Tensor r = hook(Tensor(impl->grad));
        if (!r.defined()) continue;
        if (r.shape() != impl->shape)
            throw Error(fmt::format("tapegrad: hook on '{}' returned a gradient of shape {} for a tensor of "
                                    "shape {}{}",
                                    impl->label, shape_str(r.shape()), shape_str(impl->shape),
                                    e ? " [registered on the output of " + std::string(e->op) + " at " +
                                            loc_str(e->where) + "]"
                                      : ""));
        impl->grad = (r.is_contiguous() ? r : r.clone()).impl_ptr();
    }
}

// Run one entry's backward closure, giving each input that needs a gradient a slot.
// May input j of e get its gradient written over its own buffer (TapeEntry::
// grad_over_input)? Only when the values are never read again: no retained
// graph, no other view of the buffer, and no handle on the tensor but the
// tape's and, at most, one the closure captured.
static bool grad_may_overwrite(const TapeEntry& e, size_t j, bool retain_graph) {
    const Tensor& in = e.inputs[j];
    if (static_cast<int64_t>(j) != e.grad_over_input || retain_graph || !memory_saving()) return false;
    if (!detail::release_active() || in.is_leaf() || !in.storage() || !in.is_contiguous()) return false;
    if (in.offset() != 0 || static_cast<int64_t>(in.storage()->size()) != in.numel()) return false;
    return in.storage().use_count() == 1 &&
           in.impl_ptr().use_count() <= detail::release_tape_handles(in.impl()) + 1;
}

static void backward_entry(TapeEntry& e, std::unordered_set<TensorImpl*>& leaves, bool retain_graph) {
    TensorImpl* out = e.output.impl();
    std::vector<GradSlot> slots(e.inputs.size());
    std::vector<Tensor> fresh(e.inputs.size());  // new buffers, installed after the call
    std::vector<Tensor> dup_tmp(e.inputs.size());
    for (size_t j = 0; j < e.inputs.size(); ++j) {
        const Tensor& in = e.inputs[j];
        if (!in.defined() || !in.requires_grad()) continue;
        bool seen_before = false;
        for (size_t k = 0; k < j; ++k) seen_before |= e.inputs[k].impl() == in.impl();
        if (seen_before) {  // x*x: the second use gets its own buffer, summed below
            dup_tmp[j] = Tensor::empty(in.shape());
            slots[j] = {dup_tmp[j].data(), false, &in.shape()};
        } else if (in.impl()->grad) {
            slots[j] = {Tensor(in.impl()->grad).data(), true, &in.shape()};
        } else if (grad_may_overwrite(e, j, retain_graph)) {
            fresh[j] = in.detach();  // the gradient takes over the input's buffer
            slots[j] = {fresh[j].data(), false, &in.shape()};
        } else {
            fresh[j] = Tensor::empty(in.shape());
            slots[j] = {fresh[j].data(), false, &in.shape()};
        }
        if (in.is_leaf()) leaves.insert(in.impl());
    }
    detail::rematerialize_inputs(e);
    auto t0 = std::chrono::steady_clock::now();
    e.backward(Tensor(out->grad), slots);
    if (profiling())
        profile_add(e.op, 0, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    for (size_t j = 0; j < e.inputs.size(); ++j) {
        if (fresh[j].defined()) e.inputs[j].impl()->grad = fresh[j].impl_ptr();
        if (dup_tmp[j].defined()) {
            float* dst = Tensor(e.inputs[j].impl()->grad).data();
            const float* src = dup_tmp[j].data();
            for (int64_t i = 0; i < dup_tmp[j].numel(); ++i) dst[i] += src[i];
        }
    }
    if (detect_anomaly()) detail::check_backward_anomaly(e, slots);
}

namespace {
thread_local BackwardListener* t_listener = nullptr;

// The walk index at which each leaf's gradient becomes final: its first use in
// the forward (see BackwardListener in core/tape.h), as (index, leaf) pairs in
// the walk's order (highest index first).
std::vector<std::pair<int64_t, TensorImpl*>> leaf_last_uses(std::vector<TapeEntry>& entries, int64_t top) {
    std::unordered_map<TensorImpl*, int64_t> first;
    for (int64_t i = 0; i <= top; ++i)
        for (const Tensor& in : entries[static_cast<size_t>(i)].inputs)
            if (in.defined() && in.is_leaf() && in.requires_grad()) first.try_emplace(in.impl(), i);
    std::vector<std::pair<int64_t, TensorImpl*>> v;
    v.reserve(first.size());
    for (auto& [leaf, i] : first) v.emplace_back(i, leaf);
    std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.first > b.first; });
    return v;
}

// One step of the walk: hooks on the entry's output, the break, its closure.
void walk_entry(TapeEntry& e, detail::BreakWatch& brk, std::unordered_set<TensorImpl*>& leaves,
                bool retain_graph) {
    TensorImpl* out = e.output.impl();
    apply_hooks(out, &e);
    if (brk.hit(e)) tapegrad_backward_break(e, Tensor(out->grad));
    try {
        backward_entry(e, leaves, retain_graph);
    } catch (...) {
        if (!retain_graph) t_tape.clear();  // half-walked entries must not be walked again
        throw;
    }
    if (!out->retain_grad) out->grad.reset();
    // Without retain_graph nothing reads this entry again: drop its saved
    // tensors now, so the activations' buffers go back to the pool while
    // backward still needs buffers of the same sizes (the peak is lower).
    if (!retain_graph) {
        detail::release_forget(e);
        e.backward = nullptr;
        e.inputs.clear();
        e.output = Tensor();
    }
}
}  // namespace

void set_backward_listener(BackwardListener* l) { t_listener = l; }
BackwardListener* backward_listener() { return t_listener; }

void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph, const Loc& loc) {
    if (!root.defined()) fail("backward", loc, "called on an undefined tensor");
    if (!root.requires_grad())
        fail("backward", loc, fmt::format("{} does not require grad and has no tape entry", describe(root)));
    Tensor g = grad;
    if (!g.defined()) {
        if (root.numel() != 1)
            fail("backward", loc,
                 fmt::format("{} is not a scalar: pass an explicit gradient of that shape", describe(root)));
        g = Tensor::ones(root.shape());
    } else if (g.shape() != root.shape()) {
        fail("backward", loc,
             fmt::format("gradient of shape {} for {}", shape_str(g.shape()), describe(root)));
    }
    // The seed gradient is used in place when contiguous (no copy of a large
    // [N, V] gradient); a detached handle keeps the caller's tensor out of the tape.
    g = g.is_contiguous() ? g.detach() : g.clone();
    TensorImpl* r = root.impl();
    if (r->is_leaf()) {  // nothing recorded: the gradient of a leaf w.r.t. itself
        g = g.clone();
        if (r->grad) {
            float* d = Tensor(r->grad).data();
            for (int64_t i = 0; i < g.numel(); ++i) d[i] += g.data()[i];
        } else {
            r->grad = g.impl_ptr();
        }
        return;
    }
    if (r->generation != t_tape.generation())
        fail("backward", loc,
             fmt::format("the tape that recorded {} was already freed by an earlier "
                         "backward(); pass retain_graph=true to the first call",
                         describe(root)));
    r->grad = g.impl_ptr();
    detail::release_flush();  // the last releases of forward; no sweeps while walking
    std::unordered_set<TensorImpl*> leaves;
    detail::BreakWatch brk;
    auto& entries = t_tape.entries();
    BackwardListener* listener = t_listener;
    std::vector<std::pair<int64_t, TensorImpl*>> last_uses;
    if (listener) last_uses = leaf_last_uses(entries, r->entry);
    size_t next_ready = 0;
    for (int64_t i = r->entry; i >= 0; --i) {
        TapeEntry& e = entries[static_cast<size_t>(i)];
        if (e.output.impl()->grad) walk_entry(e, brk, leaves, retain_graph);
        if (!listener) continue;
        try {
            for (; next_ready < last_uses.size() && last_uses[next_ready].first == i; ++next_ready)
                listener->grad_ready(last_uses[next_ready].second);
            listener->entry_done();
        } catch (...) {
            if (!retain_graph) t_tape.clear();
            throw;
        }
    }
    for (TensorImpl* leaf : leaves)
        if (leaf->grad) apply_hooks(leaf, nullptr);
    brk.finish();
    if (!retain_graph) t_tape.clear();
}

}  // namespace tg
