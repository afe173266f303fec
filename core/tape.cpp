#include "core/tape.h"

#include "core/break_on.h"
#include "core/memory.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <ostream>
#include <unordered_map>
#include <unordered_set>

namespace tg {
namespace {

thread_local Tape t_tape;
thread_local bool t_grad_enabled = true;
thread_local std::vector<std::string> t_scopes;
thread_local std::string t_scope_str;
bool g_anomaly = false;
bool g_profiling = false;
thread_local std::map<std::string, OpProfile> t_profile;
thread_local std::chrono::steady_clock::time_point t_last_mark = std::chrono::steady_clock::now();

double seconds_since_mark() {
    auto now = std::chrono::steady_clock::now();
    double s = std::chrono::duration<double>(now - t_last_mark).count();
    t_last_mark = now;
    return s;
}

std::string describe(const Tensor& t) {
    return fmt::format("'{}' {}", t.label().empty() ? "(unlabelled)" : t.label(), shape_str(t.shape()));
}

// First non-finite element of a contiguous buffer, or -1.
int64_t first_nonfinite(const float* p, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i])) return i;
    return -1;
}

// First NaN and first Inf of a contiguous buffer (-1 where there is none).
std::pair<int64_t, int64_t> first_nan_inf(const float* p, int64_t n) {
    int64_t nan = -1, inf = -1;
    for (int64_t i = 0; i < n && nan < 0; ++i) {
        if (std::isnan(p[i]))
            nan = i;
        else if (inf < 0 && std::isinf(p[i]))
            inf = i;
    }
    return {nan, inf};
}

bool holds_inf(const Tensor& t) {
    if (!t.defined()) return false;
    Tensor c = t.is_contiguous() ? t : t.clone();
    return first_nan_inf(c.data(), c.numel()).second >= 0;
}

// The forward half of anomaly mode (see tape.h for what counts).
void check_forward_anomaly(const char* op, const Loc& loc, const std::vector<Tensor>& inputs,
                           const Tensor& out, bool documented_inf) {
    Tensor c = out.is_contiguous() ? out : out.clone();
    auto [nan, inf] = first_nan_inf(c.data(), c.numel());
    if (nan < 0 && (inf < 0 || documented_inf)) return;
    if (nan < 0 && std::any_of(inputs.begin(), inputs.end(), holds_inf)) return;  // carried over
    int64_t i = nan >= 0 ? nan : inf;
    fail(op, loc,
         fmt::format("anomaly: forward output {} has {} at flat index {}{}", describe(out), c.data()[i], i,
                     nan >= 0 ? "" : " (made here: no input holds an Inf)"));
}

// Memory saving's early release (core/memory.h). refs[impl] counts the handles
// this tape's entries hold on a recorded tensor (as an output or an input).
// When impl.use_count() is refs + 1 (the pending list's own handle), nothing else
// holds it: no caller, no backward closure, so no one reads its values again;
// backward needs only its shape, label and gradient. The tape then drops the
// tensor's storage reference, and the buffer returns to the pool once no view
// or closure holds it either: during forward rather than at the end of backward.
struct Releaser {
    std::unordered_map<TensorImpl*, int64_t> refs;
    std::vector<std::shared_ptr<TensorImpl>> pending;  // recorded outputs still holding storage

    void clear() {
        refs.clear();
        pending.clear();
    }
    bool active() const { return !refs.empty(); }
    void note(const TapeEntry& e) {
        refs[e.output.impl()]++;
        pending.push_back(e.output.impl_ptr());
        for (const Tensor& in : e.inputs)
            if (in.defined() && !in.is_leaf()) refs[in.impl()]++;
    }
    // An entry walked by backward drops its handles.
    void forget(const TapeEntry& e) {
        if (!active()) return;
        auto drop = [&](const Tensor& t) {
            if (!t.defined() || t.is_leaf()) return;
            auto it = refs.find(t.impl());
            if (it != refs.end()) it->second--;
        };
        drop(e.output);
        for (const Tensor& in : e.inputs) drop(in);
    }
    int64_t tape_handles(const TensorImpl* impl) const {
        auto it = refs.find(const_cast<TensorImpl*>(impl));
        return it == refs.end() ? 0 : it->second;
    }
    void sweep() {
        size_t kept = 0;
        for (size_t i = 0; i < pending.size(); ++i) {
            std::shared_ptr<TensorImpl>& p = pending[i];
            if (p.use_count() == tape_handles(p.get()) + 1)
                p->storage.reset();
            else
                pending[kept++] = std::move(p);
        }
        pending.resize(kept);
    }
};
thread_local Releaser t_release;

// Recipes of recorded outputs (recompute_in_backward), by tensor. An impl in
// here is an entry's output, alive until backward walks that entry, so its
// address is not reused while the table can be asked about it.
struct Recipe {
    std::weak_ptr<TensorImpl> src;     // the op's input, not kept alive by the recipe ...
    std::shared_ptr<TensorImpl> held;  // ... until recompute_in_backward freed the output
    std::function<void(const float*, float*)> fill;
};
thread_local std::unordered_map<TensorImpl*, Recipe> t_recipes;

// Before an entry's backward: inputs whose buffer recompute_in_backward freed
// get it back, refilled by their recipe.
void rematerialize_inputs(const TapeEntry& e) {
    if (t_recipes.empty()) return;
    for (const Tensor& in : e.inputs) {
        if (!in.defined() || in.storage()) continue;
        auto it = t_recipes.find(in.impl());
        if (it == t_recipes.end() || !it->second.held) continue;
        auto s = Storage::allocate(static_cast<size_t>(in.numel()));
        it->second.fill(Tensor(it->second.held).data(), s->data());
        in.impl()->storage = std::move(s);
    }
}

// With tracking on (--profile): the buffers allocated for entry i, see saved_holders().
thread_local std::vector<std::vector<std::weak_ptr<Storage>>> t_saved;

}  // namespace

Tape& tape() { return t_tape; }

void Tape::clear() {
    entries_.clear();
    generation_++;
    if (this == &t_tape) {
        t_release.clear();
        t_saved.clear();
        t_recipes.clear();
    }
}

namespace detail {
void set_recipe(const Tensor& out, const Tensor& src, std::function<void(const float*, float*)> fill) {
    if (out.requires_grad() && !out.is_leaf())
        t_recipes[out.impl()] = {src.impl_ptr(), nullptr, std::move(fill)};
}
}  // namespace detail

bool recompute_in_backward(const Tensor& t) {
    if (!memory_saving() || detail::break_armed() || !t.defined() || !t.storage()) return false;
    auto it = t_recipes.find(t.impl());
    if (it == t_recipes.end() || t.storage().use_count() != 1 || t.offset() != 0 || !t.is_contiguous())
        return false;
    std::shared_ptr<TensorImpl> src = it->second.src.lock();
    if (!src || !src->storage || !Tensor(src).is_contiguous()) return false;
    it->second.held = std::move(src);  // backward's refill reads it
    t.impl()->storage.reset();
    return true;
}

std::vector<SavedHolder> saved_holders() {
    std::vector<SavedHolder> out;
    auto& entries = t_tape.entries();
    for (size_t i = 0; i < entries.size() && i < t_saved.size(); ++i) {
        size_t bytes = 0;
        for (auto& w : t_saved[i])
            if (auto s = w.lock()) bytes += s->size() * sizeof(float);
        if (bytes) out.push_back({entries[i].op, entries[i].output.label(), bytes});
    }
    std::stable_sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.bytes > b.bytes; });
    return out;
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

void set_detect_anomaly(bool on) { g_anomaly = on; }
bool detect_anomaly() { return g_anomaly; }

void set_profiling(bool on) {
    g_profiling = on;
    seconds_since_mark();
}
bool profiling() { return g_profiling; }
void profile_add(const char* op, double fwd, double bwd) {
    auto& p = t_profile[op];
    p.op = op;
    p.forward_s += fwd;
    p.backward_s += bwd;
    if (fwd > 0) p.calls++;
}
std::vector<OpProfile> take_profile() {
    std::vector<OpProfile> out;
    for (auto& [k, v] : t_profile) out.push_back(v);
    t_profile.clear();
    return out;
}

void print_profile(std::ostream& os, double step_seconds) {
    std::vector<OpProfile> ops = take_profile();
    std::sort(ops.begin(), ops.end(),
              [](auto& a, auto& b) { return a.forward_s + a.backward_s > b.forward_s + b.backward_s; });
    double total = 0;
    for (auto& p : ops) total += p.forward_s + p.backward_s;
    os << fmt::format("per-op profile of one step ({:.3f} s; ops account for {:.3f} s)\n", step_seconds,
                      total);
    os << fmt::format("{:<16} {:>6} {:>11} {:>11} {:>8}\n", "op", "calls", "forward ms", "backward ms",
                      "share");
    for (auto& p : ops)
        os << fmt::format("{:<16} {:>6} {:>11.2f} {:>11.2f} {:>7.1f}%\n", p.op, p.calls, p.forward_s * 1e3,
                          p.backward_s * 1e3,
                          100.0 * (p.forward_s + p.backward_s) / std::max(step_seconds, 1e-12));
}

bool needs_record(std::initializer_list<const Tensor*> inputs) {
    if (!t_grad_enabled) return false;
    for (const Tensor* t : inputs)
        if (t->defined() && t->requires_grad()) return true;
    return false;
}

void record(const char* op, const Loc& loc, std::vector<Tensor> inputs, Tensor& out, BackwardFn backward,
            bool documented_inf) {
    if (out.label().empty()) out.set_label(scoped(op));
    if (g_profiling) profile_add(op, seconds_since_mark(), 0);
    if (g_anomaly) check_forward_anomaly(op, loc, inputs, out, documented_inf);
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
    t_tape.entries().push_back(TapeEntry{op, loc, std::move(inputs), out, std::move(backward)});
    if (track_saved()) {
        t_saved.resize(t_tape.entries().size());
        t_saved.back() = std::move(allocs);
    }
    if (memory_saving() && !detail::break_armed()) {
        t_release.note(t_tape.entries().back());
        t_release.sweep();
    }
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
    if (!t_release.active() || in.is_leaf() || !in.storage() || !in.is_contiguous()) return false;
    if (in.offset() != 0 || static_cast<int64_t>(in.storage()->size()) != in.numel()) return false;
    return in.storage().use_count() == 1 &&
           in.impl_ptr().use_count() <= t_release.tape_handles(in.impl()) + 1;
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
    rematerialize_inputs(e);
    auto t0 = std::chrono::steady_clock::now();
    e.backward(Tensor(out->grad), slots);
    if (g_profiling)
        profile_add(e.op, 0, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    for (size_t j = 0; j < e.inputs.size(); ++j) {
        if (fresh[j].defined()) e.inputs[j].impl()->grad = fresh[j].impl_ptr();
        if (dup_tmp[j].defined()) {
            float* dst = Tensor(e.inputs[j].impl()->grad).data();
            const float* src = dup_tmp[j].data();
            for (int64_t i = 0; i < dup_tmp[j].numel(); ++i) dst[i] += src[i];
        }
    }
    if (!g_anomaly) return;
    for (size_t j = 0; j < e.inputs.size(); ++j) {
        if (!slots[j]) continue;
        Tensor g(e.inputs[j].impl()->grad);
        if (int64_t i = first_nonfinite(g.data(), g.numel()); i >= 0)
            throw Error(fmt::format("tapegrad: {}: anomaly: backward wrote {} into the gradient of input {} "
                                    "({}) at flat index {}; entry output {} [recorded at {}]",
                                    e.op, g.data()[i], j, describe(e.inputs[j]), i, describe(e.output),
                                    loc_str(e.where)));
    }
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
        t_release.forget(e);
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
    if (t_release.active()) {  // the last releases of forward; no sweeps while walking
        t_release.sweep();
        t_release.pending.clear();
    }
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

// One line per entry. Each input reads "label[shape] <- #k" when entry k of this
// tape made it (or "leaf"), then "needs grad" or "no grad": what backward will
// write a gradient for.
void Tape::dump(std::ostream& os) const {
    os << fmt::format("tape generation {}, {} entries\n", generation_, entries_.size());
    os << "#index op label [output shape] <- inputs: label[shape] (<- #entry that made it | leaf), "
          "needs grad | no grad  @ call site\n";
    for (size_t i = 0; i < entries_.size(); ++i) {
        const TapeEntry& e = entries_[i];
        std::string ins;
        for (const Tensor& t : e.inputs) {
            if (!t.defined()) continue;
            const TensorImpl* ti = t.impl();
            bool made_here = !ti->is_leaf() && ti->generation == generation_;
            ins += fmt::format("{}{}{} {}, {}", ins.empty() ? "" : "; ", t.label().empty() ? "?" : t.label(),
                               shape_str(t.shape()), made_here ? fmt::format("<- #{}", ti->entry) : "leaf",
                               t.requires_grad() ? "needs grad" : "no grad");
        }
        os << fmt::format("#{:<4} {:<14} {:<40} {:<16} <- {}  @ {}\n", i, e.op, e.output.label(),
                          shape_str(e.output.shape()), ins, loc_str(e.where));
    }
}

void Tape::to_dot(std::ostream& os) const {
    os << "digraph tape {\n  rankdir=LR;\n  node [fontname=\"monospace\", fontsize=10];\n";
    std::unordered_set<const TensorImpl*> leaves;
    for (size_t i = 0; i < entries_.size(); ++i) {
        const TapeEntry& e = entries_[i];
        os << fmt::format("  e{} [shape=box, label=\"#{} {}\\n{}\\n{}\"];\n", i, i, e.op, e.output.label(),
                          shape_str(e.output.shape()));
        for (const Tensor& t : e.inputs) {
            if (!t.defined()) continue;
            const TensorImpl* ti = t.impl();
            if (!ti->is_leaf() && ti->generation == generation_) {
                os << fmt::format("  e{} -> e{};\n", ti->entry, i);
            } else {
                if (leaves.insert(ti).second)
                    os << fmt::format("  l{} [shape=ellipse, label=\"{}\\n{}{}\"];\n",
                                      static_cast<const void*>(ti), t.label().empty() ? "leaf" : t.label(),
                                      shape_str(t.shape()), t.requires_grad() ? "\\nrequires_grad" : "");
                os << fmt::format("  l{} -> e{};\n", static_cast<const void*>(ti), i);
            }
        }
    }
    os << "}\n";
}

}  // namespace tg

__attribute__((noinline)) void tapegrad_backward_break(const tg::TapeEntry& entry,
                                                       const tg::Tensor& grad_out) {
    asm volatile("" ::"r"(&entry), "r"(&grad_out) : "memory");  // keep the call and its arguments
}

// Ask gdb to load tapegrad's pretty-printers for any binary linking the core
// (subject to gdb's auto-load safe-path; see docs/debugging.md). The section
// holds a small inline Python script (entry type 4) instead of a file path, so
// no build-machine path is compiled in: it loads tapegrad_printers.py from
// $TAPEGRAD_DATA/gdb, else from <binary's folder>/../share/tapegrad/gdb — the
// install layout, which the build tree mirrors (cmake/install.cmake).
asm(".pushsection \".debug_gdb_scripts\", \"MS\",@progbits,1\n"
    ".byte 4\n"
    ".ascii \"gdb.inlined-script.tapegrad\\n\"\n"
    ".ascii \"import os, gdb\\n\"\n"
    ".ascii \"def _tapegrad_printers():\\n\"\n"
    ".ascii \"    here = os.path.dirname(os.path.realpath(gdb.current_objfile().filename))\\n\"\n"
    ".ascii \"    dirs = [os.path.join(os.environ[v], 'gdb') for v in ['TAPEGRAD_DATA'] if "
    "os.environ.get(v)]\\n\"\n"
    ".ascii \"    dirs.append(os.path.join(here, '..', 'share', 'tapegrad', 'gdb'))\\n\"\n"
    ".ascii \"    for d in dirs:\\n\"\n"
    ".ascii \"        p = os.path.join(d, 'tapegrad_printers.py')\\n\"\n"
    ".ascii \"        if os.path.isfile(p):\\n\"\n"
    ".ascii \"            exec(compile(open(p).read(), p, 'exec'), {'__name__': 'tapegrad_printers'})\\n\"\n"
    ".ascii \"            return\\n\"\n"
    ".ascii \"    gdb.write('tapegrad: no pretty-printers in ' + ', '.join(dirs) + ' (set TAPEGRAD_DATA)' + "
    "chr(10))\\n\"\n"
    ".ascii \"_tapegrad_printers()\\n\"\n"
    ".byte 0\n"
    ".popsection\n");
