// Flat float32 buffers shared by tensor views, recycled through a size-keyed pool.
//
// Why a pool: on these machines a first-touch page fault costs ~11 us per 4 KiB
// page, so a 50257x512 logits buffer costs ~70 ms to touch fresh every step.
// Buffers of a freed Storage go back to the pool and the next request of that
// size reuses them (exact fit, see storage.cpp), so a steady
// training loop allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace tg {

class Storage {
public:
    // Uninitialised buffer of n floats (NaN-filled when debug_fill_nan is on).
    static std::shared_ptr<Storage> allocate(size_t n);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;

    float* data() { return data_; }
    const float* data() const { return data_; }
    size_t size() const { return n_; }

private:
    Storage(float* p, size_t n) : data_(p), n_(n) {}
    float* data_;
    size_t n_;  // floats
};

// Fill every new buffer with NaN so that an element an op forgets to write
// (forward or backward) shows up in the tests instead of reading stale memory.
void set_debug_fill_nan(bool on);
bool debug_fill_nan();

// Pool statistics, for the benchmark and for tests of steady-state allocation.
struct PoolStats {
    size_t fresh_allocations = 0;  // buffers taken from the system allocator
    size_t reuses = 0;             // requests served from the pool
    size_t bytes_live = 0;         // bytes in use by live Storage
    size_t bytes_pooled = 0;       // bytes parked in the pool
};
PoolStats pool_stats();
void pool_release_all();  // give parked buffers back to the system

}  // namespace tg
