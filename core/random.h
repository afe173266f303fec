// One seeded random generator and its distributions, written to draw the same
// numbers in the same order as PyTorch's CPU generator (torch.manual_seed), so
// initialisation, dropout and shuffling can be reproduced bit for bit.
//
// The engine is a 32-bit Mersenne Twister (mt19937) seeded with the low 32 bits
// of the seed, exactly std::mt19937's recurrence (core/mt19937.h). Every transform is written once
// here, with its formula; tests/test_random.cpp checks each against fixtures made
// by tools/make_random_fixtures.py with Debian's PyTorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/mt19937.h"

namespace tg {

class Generator {
public:
    explicit Generator(uint64_t seed = 67280421310721ULL) { manual_seed(seed); }
    void manual_seed(uint64_t seed);
    uint64_t initial_seed() const { return seed_; }

    uint32_t random() { return static_cast<uint32_t>(engine_()); }
    // random64 = (first 32-bit draw << 32) | second draw.
    uint64_t random64();

    // float32 uniform in [from, to): one 32-bit draw r, x = (r & (2^24-1)) * 2^-24,
    // returned as fma(x, to - from, from) in float (one rounding, as
    // PyTorch's AVX2 build computes it).
    float uniform_float(float from, float to);
    // float64 uniform in [from, to): x = (random64() & (2^53-1)) * 2^-53.
    double uniform_double(double from, double to);

    // Tensor.uniform_(from, to) on float32 data: one uniform_float per element.
    void fill_uniform(float* data, int64_t n, double from, double to);
    // Tensor.normal_(mean, std) on contiguous float32 data; see random.cpp.
    void fill_normal(float* data, int64_t n, double mean, double std);
    // Tensor.bernoulli_(p) with a scalar p: a float64 uniform per element, 1 if u < p.
    void fill_bernoulli(float* data, int64_t n, double p);
    // Advance the stream past n fill_bernoulli elements (2 words each) without
    // producing them: the state is the one fill_bernoulli(.., n, ..) leaves.
    void skip_bernoulli(int64_t n) { engine_.discard(2 * n); }
    // torch.randperm(n, generator=g) on CPU.
    std::vector<int64_t> randperm(int64_t n);
    // torch.empty((), dtype=torch.int64).random_(): a non-negative int64 drawn as
    // random64() % 2^63 (the range [0, 2^63) of int64's random_).
    int64_t random_int64();

    // The complete state, to save in a checkpoint and resume bit-identically.
    std::string state() const;
    void set_state(const std::string& s);

private:
    double normal_double(double mean, double std);  // Box-Muller in double, cached pair
    Mt19937 engine_;
    uint64_t seed_ = 0;
    bool has_next_normal_ = false;
    double next_normal_ = 0;
};

// The default (global) generator, torch.manual_seed's counterpart.
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace tg

namespace tg {
// nn.Linear's reset_parameters, to the last bit: the weight gets
// kaiming_uniform_(a = sqrt(5)), i.e. uniform(-b, b) with
// b = sqrt(3) * (sqrt(2 / (1 + 5)) / sqrt(fan_in)) evaluated in double as Python
// does; the bias gets uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).
double linear_weight_bound(int64_t fan_in);
double linear_bias_bound(int64_t fan_in);
}  // namespace tg
