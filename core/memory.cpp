// Memory saving (core/memory.h): the switch, early release of recorded
// activations, recompute recipes, the saved-tensor tracking behind
// saved_holders(), and RSS readings. The tape's engine (core/tape.cpp) calls in
// through core/tape_hooks.h.
#include "core/memory.h"

#include <algorithm>
#include <functional>
#include <unordered_map>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <utility>

#include "core/break_on.h"
#include "core/storage.h"
#include "core/tape_hooks.h"

namespace tg {
namespace {
std::atomic<bool> g_saving{true};
std::atomic<bool> g_track{false};
thread_local std::vector<std::weak_ptr<Storage>> t_allocs;

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

// With tracking on (--profile): the buffers allocated for entry i, see saved_holders().
thread_local std::vector<std::vector<std::weak_ptr<Storage>>> t_saved;

// "VmRSS:     1234 kB" -> bytes; 0 when the line is absent.
size_t status_kb(const char* text, const char* key) {
    const char* p = std::strstr(text, key);
    if (!p) return 0;
    unsigned long long kb = 0;
    std::sscanf(p + std::strlen(key), " %llu", &kb);
    return static_cast<size_t>(kb) * 1024;
}
}  // namespace

void set_memory_saving(bool on) { g_saving = on; }
bool memory_saving() { return g_saving; }

Rss read_rss() {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return {};
    char buf[8192];
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    return {status_kb(buf, "VmRSS:"), status_kb(buf, "VmHWM:")};
}

bool reset_peak_rss() {
    FILE* f = std::fopen("/proc/self/clear_refs", "w");
    if (!f) return false;
    bool ok = std::fputs("5", f) >= 0;
    return std::fclose(f) == 0 && ok;
}

void set_track_saved(bool on) {
    g_track = on;
    t_allocs.clear();
}
bool track_saved() { return g_track; }

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
    auto& entries = tape().entries();
    for (size_t i = 0; i < entries.size() && i < t_saved.size(); ++i) {
        size_t bytes = 0;
        for (auto& w : t_saved[i])
            if (auto s = w.lock()) bytes += s->size() * sizeof(float);
        if (bytes) out.push_back({entries[i].op, entries[i].output.label(), bytes});
    }
    std::stable_sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.bytes > b.bytes; });
    return out;
}

namespace detail {
void memory_tape_cleared() {
    t_release.clear();
    t_saved.clear();
    t_recipes.clear();
}
void release_note(const TapeEntry& e) {
    t_release.note(e);
    t_release.sweep();
}
bool release_active() { return t_release.active(); }
int64_t release_tape_handles(const TensorImpl* impl) { return t_release.tape_handles(impl); }
void release_forget(const TapeEntry& e) { t_release.forget(e); }
void release_flush() {
    if (!t_release.active()) return;
    t_release.sweep();
    t_release.pending.clear();
}
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
void saved_note(size_t n_entries, std::vector<std::weak_ptr<Storage>> allocs) {
    t_saved.resize(n_entries);
    t_saved.back() = std::move(allocs);
}
}  // namespace detail

namespace detail {
void note_allocation(const std::shared_ptr<Storage>& s) { t_allocs.push_back(s); }
std::vector<std::weak_ptr<Storage>> take_allocations() { return std::exchange(t_allocs, {}); }
}  // namespace detail

}  // namespace tg
