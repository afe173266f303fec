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
    size_t bytes_held_peak = 0;    // the most bytes_live + bytes_pooled reached since pool_reset_peak()
};
PoolStats pool_stats();
// Give parked buffers back to the system. The pool is keyed by exact size, so a
// run of other shapes never reuses the buffers a finished run parked (issue 37:
// `compare` peaked at the sum of its runs). tg::train::Trainer calls this when it
// is destroyed; a downstream program that runs models of different shapes one
// after another without a Trainer calls it between them, once the first run's
// tensors are gone. Live buffers are untouched.
void pool_release_all();
void pool_reset_peak();  // bytes_held_peak = what is held now

}  // namespace tg
