#include "core/storage.h"

#include "core/memory.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace tg {
namespace {

struct Pool {
    std::mutex mu;
    std::unordered_map<size_t, std::vector<float*>> free;  // parked buffers by size in floats
    PoolStats stats;
    bool fill_nan = false;
};

Pool& pool() {
    static Pool* p = new Pool();  // never destroyed: Storage may die at exit
    return *p;
}

}  // namespace

// Exact fit: a parked buffer of exactly n floats, else a fresh one. A training
// step repeats its shapes, so from the second step on every request finds its
// size. Reusing larger buffers (best fit up to 3x, until issue 17) let one size
// take another's buffers (activations of step 2 took the gradients' parked
// buffers, whose own requests then touched fresh pages): the pool held 170-200 MB
// more at the 124M step's peak than exact sizes do (train --profile).
std::shared_ptr<Storage> Storage::allocate(size_t n) {
    Pool& p = pool();
    float* data = nullptr;
    {
        std::lock_guard<std::mutex> lock(p.mu);
        if (auto it = p.free.find(n); it != p.free.end() && !it->second.empty()) {
            data = it->second.back();
            it->second.pop_back();
            p.stats.reuses++;
            p.stats.bytes_pooled -= n * sizeof(float);
        }
        p.stats.bytes_live += n * sizeof(float);
        p.stats.bytes_held_peak =
            std::max(p.stats.bytes_held_peak, p.stats.bytes_live + p.stats.bytes_pooled);
    }
    if (!data) {
        // 64-byte alignment keeps SIMD loads and BLAS panels on cache lines.
        size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
        data = static_cast<float*>(std::aligned_alloc(64, bytes ? bytes : 64));
        if (!data) throw std::bad_alloc();
        std::lock_guard<std::mutex> lock(p.mu);
        p.stats.fresh_allocations++;
    }
    if (p.fill_nan) {
        float nan = std::numeric_limits<float>::quiet_NaN();
        for (size_t i = 0; i < n; ++i) data[i] = nan;
    }
    std::shared_ptr<Storage> s(new Storage(data, n));
    if (track_saved()) detail::note_allocation(s);  // --profile's saved-tensor holders
    return s;
}

Storage::~Storage() {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    p.free[n_].push_back(data_);
    p.stats.bytes_live -= n_ * sizeof(float);
    p.stats.bytes_pooled += n_ * sizeof(float);
}

void set_debug_fill_nan(bool on) { pool().fill_nan = on; }
bool debug_fill_nan() { return pool().fill_nan; }

PoolStats pool_stats() {
    std::lock_guard<std::mutex> lock(pool().mu);
    return pool().stats;
}

void pool_release_all() {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    for (auto& [n, v] : p.free)
        for (float* f : v) std::free(f);
    p.free.clear();
    p.stats.bytes_pooled = 0;
}

void pool_reset_peak() {
    std::lock_guard<std::mutex> lock(pool().mu);
    pool().stats.bytes_held_peak = pool().stats.bytes_live + pool().stats.bytes_pooled;
}

}  // namespace tg
