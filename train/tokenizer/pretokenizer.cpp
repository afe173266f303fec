#include "train/tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fmt/format.h>
#include <pcre2.h>

#include "core/tensor.h"

namespace tg::train {
namespace {

const char* kPattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// One anchored character: which group matched is its class (none: other).
const char* kClassPattern = R"((\p{L})|(\p{N})|(\s))";

pcre2_code* compile(const char* pattern, uint32_t options) {
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_UCP | options, &err, &off, nullptr);
    if (!code) throw Error(fmt::format("tapegrad: tokenizer: PCRE2 rejected the pattern {}", pattern));
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // without JIT (an unsupported CPU) the interpreter answers
    return code;
}

size_t utf8(uint32_t cp, char* out) {
    if (cp < 0x80) {
        out[0] = static_cast<char>(cp);
        return 1;
    }
    if (cp < 0x800) {
        out[0] = static_cast<char>(0xC0 | cp >> 6);
        out[1] = static_cast<char>(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = static_cast<char>(0xE0 | cp >> 12);
        out[1] = static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        out[2] = static_cast<char>(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = static_cast<char>(0xF0 | cp >> 18);
    out[1] = static_cast<char>(0x80 | (cp >> 12 & 0x3F));
    out[2] = static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    out[3] = static_cast<char>(0x80 | (cp & 0x3F));
    return 4;
}

}  // namespace

namespace {
// PCRE2 match data for one pattern, freed on every path (std::bad_alloc if none).
class MatchData {
public:
    explicit MatchData(const pcre2_code* code) : md_(pcre2_match_data_create_from_pattern(code, nullptr)) {
        if (!md_) throw std::bad_alloc();
    }
    ~MatchData() { pcre2_match_data_free(md_); }
    MatchData(const MatchData&) = delete;
    MatchData& operator=(const MatchData&) = delete;
    pcre2_match_data* get() const { return md_; }

private:
    pcre2_match_data* md_;
};
}  // namespace

struct PreTokenizer::Patterns {
    pcre2_code* gpt2 = nullptr;
    pcre2_code* one_class = nullptr;
    ~Patterns() {
        pcre2_code_free(gpt2);
        pcre2_code_free(one_class);
    }
};

PreTokenizer::PreTokenizer()
    : blocks_(std::make_unique<std::atomic<uint8_t*>[]>(kBlocks)), re_(std::make_unique<Patterns>()) {
    re_->gpt2 = compile(kPattern, 0);
    re_->one_class = compile(kClassPattern, PCRE2_ANCHORED);
    MatchData md(re_->one_class);
    for (uint32_t c = 0; c < 128; ++c) ascii_[c] = classify(c, md.get());
}

PreTokenizer::~PreTokenizer() {
    for (uint32_t b = 0; b < kBlocks; ++b) delete[] blocks_[b].load();
}

PreTokenizer::Class PreTokenizer::classify(uint32_t cp, pcre2_match_data* md) const {
    if (cp >= 0xD800 && cp <= 0xDFFF) return kOther;  // surrogates: never in valid UTF-8
    char bytes[4];
    const size_t n = utf8(cp, bytes);
    int rc = pcre2_match(re_->one_class, reinterpret_cast<PCRE2_SPTR>(bytes), n, 0, 0, md, nullptr);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)  // a wrong class would stay for the tokenizer's life
        throw Error(fmt::format("tapegrad: tokenizer: PCRE2 failed to classify U+{:04X} (code {})", cp, rc));
    // rc: 1 + the highest group set; no match: other.
    return rc == 2 ? kLetter : rc == 3 ? kNumber : rc == 4 ? kSpace : kOther;
}

const uint8_t* PreTokenizer::block(uint32_t index) const {
    std::atomic<uint8_t*>& slot = blocks_[index];
    if (uint8_t* b = slot.load(std::memory_order_acquire)) return b;
    auto fresh = std::make_unique<uint8_t[]>(256);
    MatchData md(re_->one_class);
    for (uint32_t i = 0; i < 256; ++i) fresh[i] = classify(index << 8 | i, md.get());
    uint8_t* expected = nullptr;
    if (slot.compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel))
        return fresh.release();
    return expected;  // another thread published the same classes first
}

PreTokenizer::Class PreTokenizer::class_of(uint32_t cp) const {
    if (cp < 128) return static_cast<Class>(ascii_[cp]);
    if (cp > 0x10FFFF) return kOther;
    return static_cast<Class>(block(cp >> 8)[cp & 0xFF]);
}

// Inlined into end_of and run_end: ASCII from a table; other characters
// decoded and looked up in their block (a null block is computed once, out of line).
inline PreTokenizer::Class PreTokenizer::at(std::string_view t, size_t i, size_t& len) const {
    const auto c = static_cast<unsigned char>(t[i]);
    if (c < 0x80) {
        len = 1;
        return static_cast<Class>(ascii_[c]);
    }
    len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (len > t.size() - i) [[unlikely]] {  // only on invalid UTF-8, which callers do not pass
        len = t.size() - i;
        return kOther;
    }
    uint32_t cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
    for (size_t k = 1; k < len; ++k) cp = cp << 6 | (static_cast<unsigned char>(t[i + k]) & 0x3F);
    if (cp > 0x10FFFF) [[unlikely]]  // lead bytes F5-FF, or F4 90 and up: invalid, but never out of the table
        return kOther;
    const uint8_t* b = blocks_[cp >> 8].load(std::memory_order_acquire);
    if (!b) [[unlikely]]
        b = block(cp >> 8);
    return static_cast<Class>(b[cp & 0xFF]);
}

size_t PreTokenizer::run_end(std::string_view t, size_t i, Class k) const {
    size_t len;
    while (i < t.size() && at(t, i, len) == k) i += len;
    return i;
}

// The pattern's alternatives in its order, each decided by the first one or
// two characters:
//  1. 's 't 'm 'd 're 've 'll: an apostrophe and these letters, whatever follows;
//  2-4. an optional ' ' and then a run of letters, of numbers or of others
//     (the run's class is its first character's);
//  5. \s+(?!\S): a run of spaces, given back its last character when a
//     non-space follows (that character then starts the next pre-token, where
//     a ' ' joins the word after it);
//  6. \s+: a single space character before a non-space.
size_t PreTokenizer::end_of(std::string_view t, size_t p) const {
    const size_t n = t.size();
    const char c = t[p];
    if (c == '\'' && p + 1 < n) {
        const char d = t[p + 1];
        if (d == 's' || d == 't' || d == 'm' || d == 'd') return p + 2;
        if (p + 2 < n &&
            ((d == 'r' && t[p + 2] == 'e') || (d == 'v' && t[p + 2] == 'e') || (d == 'l' && t[p + 2] == 'l')))
            return p + 3;
    }
    size_t len;
    const Class k = at(t, p, len);
    if (k != kSpace) return run_end(t, p + len, k);
    if (c == ' ' && p + 1 < n) {
        size_t len2;
        const Class k2 = at(t, p + 1, len2);
        if (k2 != kSpace) return run_end(t, p + 1 + len2, k2);
    }
    size_t e = p + len, last = p;  // last: where the run's last character starts
    while (e < n) {
        size_t l;
        if (at(t, e, l) != kSpace) break;
        last = e;
        e += l;
    }
    return e == n || last == p ? e : last;
}

std::vector<size_t> PreTokenizer::reference_ends(std::string_view text) const {
    MatchData data(re_->gpt2);
    pcre2_match_data* md = data.get();
    std::vector<size_t> ends;
    auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    for (size_t pos = 0; pos < text.size();) {
        // The first call checks the whole subject's UTF-8; later ones need not.
        int rc = pcre2_match(re_->gpt2, subject, text.size(), pos, pos ? PCRE2_NO_UTF_CHECK : 0, md, nullptr);
        PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        if (rc < 0 || ov[1] == ov[0] || ov[0] != pos)
            throw Error(fmt::format("tapegrad: tokenizer: GPT-2's pattern failed at byte {} (PCRE2 code {})",
                                    pos, rc));
        ends.push_back(ov[1]);
        pos = ov[1];
    }
    return ends;
}

}  // namespace tg::train
