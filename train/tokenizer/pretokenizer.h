// GPT-2's pre-tokenisation, written out by hand: where each pre-token of a
// valid UTF-8 text ends, as the pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// matches it under PCRE2 (UTF + UCP), without running the pattern.
//
// Why: the JIT-compiled pattern was a quarter of English's encoding time and a
// third of random bytes' (a call per pre-token, and random bytes make ~0.45
// pre-tokens a byte). The alternation reduces to a few rules on the classes of
// one or two characters (end_of), each a table lookup.
//
// The classes (letter \p{L}, number \p{N}, space \s, other) are PCRE2's own:
// each block of 256 code points is classified by PCRE2 the first time a text
// holds one of them (ASCII at construction), so the split follows the Unicode
// tables of the PCRE2 the build links, as the pattern did. reference_ends runs
// the pattern itself; the tests check end_of against it over every code point
// of all 17 planes in several contexts, and on random text.
//
// Threads: end_of may run on any number of threads. A block's classes are
// computed by whichever thread needs them first and published with one atomic
// pointer per block (a thread that loses the race frees its copy).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

struct pcre2_real_match_data_8;  // PCRE2's match data (pcre2.h), kept out of this header
typedef struct pcre2_real_match_data_8 pcre2_match_data_8;

namespace tg::train {

class PreTokenizer {
public:
    enum Class : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };

    PreTokenizer();  // throws if PCRE2 rejects the patterns
    ~PreTokenizer();
    PreTokenizer(const PreTokenizer&) = delete;
    PreTokenizer& operator=(const PreTokenizer&) = delete;

    // The end of the pre-token that starts at byte `pos` (< text.size()) of
    // valid UTF-8 `text`; always > pos. The text's end is the pattern's end of
    // subject (a run of spaces there is kept whole). Invalid UTF-8 (which the
    // tokenizer replaces before) gets some split, never a read outside the text.
    size_t end_of(std::string_view text, size_t pos) const;
    // The class of code point `cp` as PCRE2 UCP sees it (beyond 0x10FFFF: other).
    Class class_of(uint32_t cp) const;
    // The same ends from PCRE2 running GPT-2's pattern (the oracle for tests;
    // not for the hot path). Throws on a PCRE2 failure.
    std::vector<size_t> reference_ends(std::string_view text) const;

private:
    // The class of the character at byte i (valid UTF-8) and its length in bytes.
    Class at(std::string_view text, size_t i, size_t& len) const;
    size_t run_end(std::string_view text, size_t i, Class k) const;  // first byte from i not of class k
    const uint8_t* block(uint32_t index) const;                      // computed on first use
    Class classify(uint32_t cp, pcre2_match_data_8* md) const;       // by PCRE2

    static constexpr uint32_t kBlocks = 0x110000 >> 8;
    uint8_t ascii_[128];
    mutable std::unique_ptr<std::atomic<uint8_t*>[]> blocks_;
    struct Patterns;
    std::unique_ptr<Patterns> re_;
};

}  // namespace tg::train
