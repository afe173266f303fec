#include "core/storage.h"

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
    std::unordered_map<size_t, std::vector<float*>> free;
    PoolStats stats;
    bool fill_nan = false;
};

Pool& pool() {
    static Pool* p = new Pool();  // never destroyed: Storage may die at exit
    return *p;
}

}  // namespace

std::shared_ptr<Storage> Storage::allocate(size_t n) {
    Pool& p = pool();
    float* data = nullptr;
    {
        std::lock_guard<std::mutex> lock(p.mu);
        auto it = p.free.find(n);
        if (it != p.free.end() && !it->second.empty()) {
            data = it->second.back();
            it->second.pop_back();
            p.stats.reuses++;
            p.stats.bytes_pooled -= n * sizeof(float);
        }
        p.stats.bytes_live += n * sizeof(float);
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
    return std::shared_ptr<Storage>(new Storage(data, n));
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

}  // namespace tg
