// The 32-bit Mersenne Twister (MT19937), the engine of PyTorch's CPU generator.
//
// Same recurrence, seeding, output and text state as std::mt19937 (the state
// streams as the 624 words and the position, space-separated, exactly as
// libstdc++ writes it, so saved generator states stay readable). Written out
// because dropout draws tens of millions of words a step: fill() twists 624
// words at a time in loops the compiler vectorises and tempers them straight into
// the caller's buffer, about twice as fast as calling std::mt19937 per word.
#pragma once

#include <cstdint>
#include <istream>
#include <ostream>

namespace tg {

class Mt19937 {
public:
    static constexpr int kN = 624, kM = 397;

    explicit Mt19937(uint32_t s = 5489u) { seed(s); }

    // x_0 = s, x_i = 1812433253 (x_{i-1} xor (x_{i-1} >> 30)) + i
    void seed(uint32_t s) {
        x_[0] = s;
        for (uint32_t i = 1; i < kN; ++i) x_[i] = 1812433253u * (x_[i - 1] ^ (x_[i - 1] >> 30)) + i;
        p_ = kN;
    }

    uint32_t operator()() {
        if (p_ >= kN) twist();
        return temper(x_[p_++]);
    }

    // out[0..n) = the next n outputs, as n calls of operator() would return them.
    void fill(uint32_t* out, int64_t n) {
        while (n > 0) {
            if (p_ >= kN) twist();
            int64_t k = n < kN - p_ ? n : kN - p_;
            temper_into(out, x_ + p_, k);
            p_ += static_cast<int>(k);
            out += k;
            n -= k;
        }
    }

    // Skip the next n outputs: the state afterwards is the one n calls leave
    // (the tempering, which does not change the state, is not computed).
    void discard(int64_t n) {
        while (n > 0) {
            if (p_ >= kN) twist();
            int64_t k = n < kN - p_ ? n : kN - p_;
            p_ += static_cast<int>(k);
            n -= k;
        }
    }

    friend std::ostream& operator<<(std::ostream& os, const Mt19937& e) {
        for (int i = 0; i < kN; ++i) os << e.x_[i] << ' ';
        return os << e.p_;
    }
    friend std::istream& operator>>(std::istream& is, Mt19937& e) {
        for (int i = 0; i < kN; ++i) is >> e.x_[i];
        is >> e.p_;
        if (is && (e.p_ < 0 || e.p_ > kN)) is.setstate(std::ios::failbit);
        return is;
    }

private:
    static uint32_t temper(uint32_t y) {
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        return y ^ (y >> 18);
    }
    // restrict: out never overlaps the state, which lets the loop vectorise.
    static void temper_into(uint32_t* __restrict out, const uint32_t* __restrict src, int64_t k) {
        for (int64_t i = 0; i < k; ++i) out[i] = temper(src[i]);
    }
    // x_i = x_{i+M} xor twist(upper bit of x_i | lower 31 bits of x_{i+1}), in three
    // runs so that no run reads a word it writes within a vector's reach.
    static uint32_t mix(uint32_t a, uint32_t b, uint32_t c) {
        uint32_t y = (a & 0x80000000u) | (b & 0x7fffffffu);
        return c ^ (y >> 1) ^ ((0u - (y & 1u)) & 0x9908b0dfu);
    }
    void twist() {
        int i = 0;
        for (; i < kN - kM; ++i) x_[i] = mix(x_[i], x_[i + 1], x_[i + kM]);
        for (; i < kN - 1; ++i) x_[i] = mix(x_[i], x_[i + 1], x_[i + kM - kN]);
        x_[kN - 1] = mix(x_[kN - 1], x_[0], x_[kM - 1]);
        p_ = 0;
    }

    uint32_t x_[kN];
    int p_ = kN;
};

}  // namespace tg
