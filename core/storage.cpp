#include "core/storage.h"

#include "core/memory.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace tg {
namespace {

struct Pool {
    std::mutex mu;
    std::map<size_t, std::vector<float*>> free;  // by capacity, ordered for best fit
    PoolStats stats;
    bool fill_nan = false;
};

Pool& pool() {
    static Pool* p = new Pool();  // never destroyed: Storage may die at exit
    return *p;
}

}  // namespace

// Best fit: the smallest parked buffer of at least n floats, if it wastes less
// than kMaxSlack of its size. Exact sizes are the common case (a training step
// repeats its shapes); the slack lets parameter gradients, made during backward,
// reuse the activation buffers backward has just released (a [768,768] weight
// gradient fits a [512,3072] activation), instead of touching fresh pages.
static constexpr size_t kMaxSlack = 3;

std::shared_ptr<Storage> Storage::allocate(size_t n) {
    Pool& p = pool();
    float* data = nullptr;
    size_t cap = n;
    {
        std::lock_guard<std::mutex> lock(p.mu);
        for (auto it = p.free.lower_bound(n);
             it != p.free.end() && it->first <= std::max<size_t>(n, 1) * kMaxSlack; ++it) {
            if (it->second.empty()) continue;
            data = it->second.back();
            it->second.pop_back();
            cap = it->first;
            p.stats.reuses++;
            p.stats.bytes_pooled -= cap * sizeof(float);
            break;
        }
        p.stats.bytes_live += cap * sizeof(float);
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
    std::shared_ptr<Storage> s(new Storage(data, n, cap));
    if (track_saved()) detail::note_allocation(s);  // --profile's saved-tensor holders
    return s;
}

Storage::~Storage() {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    p.free[cap_].push_back(data_);
    p.stats.bytes_live -= cap_ * sizeof(float);
    p.stats.bytes_pooled += cap_ * sizeof(float);
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

}  // namespace tg
