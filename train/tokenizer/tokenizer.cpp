#include "train/tokenizer/tokenizer.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <climits>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/parallel.h"
#include "core/tensor.h"
#include "train/io/read_file.h"

namespace tg::train {
namespace {

// GPT-2's byte <-> printable-unicode table: bytes that are printable Latin-1
// (! .. ~, ¡ .. ¬, ® .. ÿ) map to themselves; the other 68 map to U+0100 onwards.
std::vector<uint32_t> byte_to_codepoint() {
    std::vector<uint32_t> cp(256, 0);
    std::vector<bool> direct(256, false);
    for (int b = '!'; b <= '~'; ++b) direct[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) cp[b] = direct[b] ? static_cast<uint32_t>(b) : next++;
    return cp;
}

// Map a byte-to-unicode escaped token (UTF-8 of the escape code points) back to raw bytes.
bool unescape(const std::string& tok, const std::unordered_map<uint32_t, uint8_t>& cp_to_byte,
              std::string& out) {
    out.clear();
    std::string clean = Tokenizer::sanitize_utf8(tok);
    if (clean != tok) return false;
    for (size_t i = 0; i < tok.size();) {
        unsigned char c = static_cast<unsigned char>(tok[i]);
        int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(tok[i + k]) & 0x3F);
        auto it = cp_to_byte.find(cp);
        if (it == cp_to_byte.end()) return false;
        out.push_back(static_cast<char>(it->second));
        i += static_cast<size_t>(len);
    }
    return true;
}

constexpr uint32_t kNoPair = ~uint32_t{0};  // an empty slot of the pair table (ids are < 65535)
constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
constexpr int32_t kNoRank = INT32_MAX;          // a pair that merges into no token
constexpr size_t kBloomBits = size_t{1} << 20;  // token_bloom_: 128 KB, stays in L2
constexpr uint16_t kNoPair16 = 0xFFFF;          // byte_pair_: the two bytes are no token (ids are < 65535)

uint32_t pair_key(int32_t a, int32_t b) { return static_cast<uint32_t>(a) << 16 | static_cast<uint32_t>(b); }

int line_of(const std::string& text, size_t byte) {
    int line = 1;
    for (size_t i = 0; i < byte && i < text.size(); ++i) line += text[i] == '\n';
    return line;
}

}  // namespace

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
}

void* detail::huge_page_alloc(size_t bytes) {
    if (bytes < kHugePage) return ::operator new(bytes);
    void* p = std::aligned_alloc(kHugePage, (bytes + kHugePage - 1) / kHugePage * kHugePage);
    if (!p) throw std::bad_alloc();
    madvise(p, bytes, MADV_HUGEPAGE);  // advice only: without THP the table still works
    return p;
}

void detail::huge_page_free(void* p, size_t bytes) {
    if (bytes < kHugePage)
        ::operator delete(p);
    else
        std::free(p);
}

std::string Tokenizer::sanitize_utf8(const std::string& s, Utf8Report* report) {
    auto replaced = [&](size_t at) {
        if (!report) return;
        if (report->replaced++ == 0) report->first_offset = static_cast<int64_t>(at);
    };
    // The WHATWG UTF-8 decoder: a byte that cannot continue the current
    // sequence ends it (one U+FFFD) and is reprocessed. Output goes through a
    // block on the stack and is appended a block at a time: per-byte push_back
    // and "+=" of U+FFFD (a strlen each) were 8% of encoding random bytes.
    constexpr size_t kBlock = 4096;  // input bytes a block; each writes <= 3 bytes
    char buf[3 * kBlock + 4];        // + one sequence that starts in the block and ends past it
    auto fffd = [](char* w) {
        std::memcpy(w, "\xEF\xBF\xBD", 3);
        return w + 3;
    };
    std::string out;
    out.reserve(s.size());
    size_t i = 0, n = s.size();
    while (i < n) {
        char* w = buf;
        for (const size_t stop = std::min(n, i + kBlock); i < stop;) {
            unsigned char c = static_cast<unsigned char>(s[i]);
            if (c < 0x80) {
                *w++ = static_cast<char>(c);
                ++i;
                continue;
            }
            int need = 0;
            unsigned lo = 0x80, hi = 0xBF;
            if (c >= 0xC2 && c <= 0xDF) {
                need = 1;
            } else if (c >= 0xE0 && c <= 0xEF) {
                need = 2;
                if (c == 0xE0) lo = 0xA0;
                if (c == 0xED) hi = 0x9F;
            } else if (c >= 0xF0 && c <= 0xF4) {
                need = 3;
                if (c == 0xF0) lo = 0x90;
                if (c == 0xF4) hi = 0x8F;
            } else {
                w = fffd(w);
                replaced(i);
                ++i;
                continue;
            }
            size_t j = i + 1;
            int got = 0;
            while (got < need && j < n) {
                unsigned char d = static_cast<unsigned char>(s[j]);
                if (d < lo || d > hi) break;
                lo = 0x80;
                hi = 0xBF;
                ++j;
                ++got;
            }
            if (got == need) {
                std::memcpy(w, s.data() + i, j - i);
                w += j - i;
            } else {
                w = fffd(w);
                replaced(i);
            }
            i = j;
        }
        out.append(buf, static_cast<size_t>(w - buf));
    }
    return out;
}

void Tokenizer::note_invalid_utf8(const std::string& what, const std::string& raw) {
    Utf8Report r;
    sanitize_utf8(raw, &r);
    if (r.replaced == 0) return;
    std::cerr << fmt::format(
        "tapegrad: note: {}: {} invalid UTF-8 sequence{} replaced by U+FFFD (as tiktoken does), the first at "
        "byte offset {}\n",
        what, r.replaced, r.replaced == 1 ? "" : "s", r.first_offset);
}

Tokenizer::Tokenizer(const std::string& enc_path, const std::string& bpe_path) {
    std::vector<uint32_t> b2c = byte_to_codepoint();
    std::unordered_map<uint32_t, uint8_t> c2b;
    for (int b = 0; b < 256; ++b) c2b[b2c[b]] = static_cast<uint8_t>(b);

    std::string enc_text = read_file(enc_path, "tokenizer: cannot open");
    nlohmann::json enc;
    try {
        enc = nlohmann::json::parse(enc_text);
    } catch (const nlohmann::json::parse_error& e) {
        throw Error(fmt::format("tapegrad: tokenizer: {}:{}: not valid JSON ({})", enc_path,
                                line_of(enc_text, e.byte), e.what()));
    }
    if (!enc.is_object() || enc.empty())
        throw Error("tapegrad: tokenizer: " + enc_path + ":1: expected a JSON object of token -> id");
    // Pair keys pack two ids in 32 bits (a compact table is a faster one).
    if (enc.size() > 65535)
        throw Error(fmt::format("tapegrad: tokenizer: {}: {} tokens; at most 65535 are supported", enc_path,
                                enc.size()));
    id_to_bytes_.resize(enc.size());
    std::vector<bool> seen(enc.size(), false);
    for (auto& [tok, id] : enc.items()) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
            id.get<int64_t>() >= static_cast<int64_t>(enc.size()))
            throw Error(fmt::format("tapegrad: tokenizer: {}: token '{}' has id {} outside [0, {})", enc_path,
                                    tok, id.dump(), enc.size()));
        int64_t i = id.get<int64_t>();
        if (seen[i]) throw Error(fmt::format("tapegrad: tokenizer: {}: id {} is given twice", enc_path, i));
        seen[i] = true;
        std::string bytes;
        if (tok == "<|endoftext|>")
            bytes = tok;
        else if (!unescape(tok, c2b, bytes))
            throw Error(
                fmt::format("tapegrad: tokenizer: {}: token '{}' (id {}) is not in GPT-2's byte alphabet",
                            enc_path, tok, i));
        id_to_bytes_[i] = bytes;
        if (tok != "<|endoftext|>") bytes_to_id_[bytes] = static_cast<int32_t>(i);
    }

    std::istringstream bpe(read_file(bpe_path, "tokenizer: cannot open"));
    std::string line;
    int lineno = 0, rank = 0;
    while (std::getline(bpe, line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (lineno == 1 && line.rfind("#version", 0) == 0) continue;
        if (line.empty()) continue;
        size_t sp = line.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() ||
            line.find(' ', sp + 1) != std::string::npos)
            throw Error(fmt::format(
                "tapegrad: tokenizer: {}:{}: expected two symbols separated by one space, got '{}'", bpe_path,
                lineno, line));
        std::string a, b;
        if (!unescape(line.substr(0, sp), c2b, a) || !unescape(line.substr(sp + 1), c2b, b))
            throw Error(
                fmt::format("tapegrad: tokenizer: {}:{}: symbol outside GPT-2's byte alphabet in '{}'",
                            bpe_path, lineno, line));
        if (!bytes_to_id_.count(std::string_view(a + b)))
            throw Error(fmt::format("tapegrad: tokenizer: {}:{}: merge result of '{}' is not in {}", bpe_path,
                                    lineno, line, enc_path));
        ++rank;
    }
    if (rank == 0) throw Error("tapegrad: tokenizer: " + bpe_path + ": no merges found");
    build_pairs();
}

Tokenizer::~Tokenizer() = default;

// The pair table: (a, b) -> t for every token t and its last merge, a + b =
// t, where a and b are the two parts that BPE of t's own bytes ends with
// (its canonical split). The rank of merging a and b is t's id (tiktoken's
// rule: the rank of a byte string is its id, and GPT-2's ids follow merge
// order). Only canonical splits are kept (50,000 pairs, one a token, against
// 108,299 cuts of tokens into two tokens), and no merge changes: a part that
// BPE builds inside a longer text is built by the same merges, in the same
// order, as BPE of its bytes alone (the merges inside it are each the lowest,
// leftmost of the pairs inside it), so every merge that happens joins the
// canonical split of its token. A pair that is a non-canonical split of a
// token is therefore never the one merged, and ranking it as no merge leaves
// the lowest-ranked pair, and so every merge, as it was. A token that BPE of
// its own bytes does not end in (none in GPT-2) is never built, and has no pair.
// Stored flat (open addressing, linear probing, at most half full): a lookup
// is a multiply, a shift and usually one cache line, where a node-based map
// chased pointers; merging is lookup-bound on every input the cache misses.
void Tokenizer::build_pairs() {
    for (int b = 0; b < 256; ++b) {
        auto it = bytes_to_id_.find(std::string_view(reinterpret_cast<const char*>(&b), 1));
        byte_id_[b] = it == bytes_to_id_.end() ? -1 : it->second;
    }
    std::vector<PairSlot> cuts;
    for (const auto& [bytes, id] : bytes_to_id_) {
        std::string_view t(bytes);
        for (size_t k = 1; k < t.size(); ++k) {
            auto a = bytes_to_id_.find(t.substr(0, k));
            if (a == bytes_to_id_.end()) continue;
            auto b = bytes_to_id_.find(t.substr(k));
            if (b == bytes_to_id_.end()) continue;
            cuts.push_back({pair_key(a->second, b->second), id});
        }
    }
    fill_pairs(cuts);  // every cut: tiktoken's rule, for BPE of each token's bytes below
    std::vector<PairSlot> canonical;
    for (const auto& [bytes, id] : bytes_to_id_) {
        if (bytes.size() < 2) continue;
        if (auto [a, b] = last_merge(bytes); a >= 0) canonical.push_back({pair_key(a, b), id});
    }
    fill_pairs(canonical);
    pair_bloom_.assign(size_t{1} << 14, 0);  // word: the key's hash >> 50; bits: two 6-bit fields of it
    for (const PairSlot& f : canonical) {
        const uint64_t h = uint64_t{f.key} * kGolden;
        pair_bloom_[h >> 50] |= uint64_t{1} << (h >> 32 & 63) | uint64_t{1} << (h >> 38 & 63);
    }
    byte_pair_.assign(size_t{1} << 16, kNoPair16);
    for (int a = 0; a < 256; ++a)
        for (int b = 0; b < 256; ++b) {
            int32_t r = byte_id_[a] < 0 || byte_id_[b] < 0 ? -1 : pair_rank(byte_id_[a], byte_id_[b]);
            if (r >= 0) byte_pair_[static_cast<size_t>(a << 8 | b)] = static_cast<uint16_t>(r);
        }
    inner3_.assign(size_t{1} << 18, 0);  // 2^24 bits: three bytes occur inside a token
    for (const auto& [bytes, id] : bytes_to_id_) {
        auto b = reinterpret_cast<const unsigned char*>(bytes.data());
        for (size_t k = 0; k + 3 <= bytes.size(); ++k) {
            uint32_t i = uint32_t{b[k]} << 16 | uint32_t{b[k + 1]} << 8 | b[k + 2];
            inner3_[i >> 6] |= uint64_t{1} << (i & 63);
        }
    }
    int bits = 4;
    while ((size_t{1} << bits) < 2 * bytes_to_id_.size()) ++bits;
    token_shift_ = 64 - bits;
    tokens_.assign(size_t{1} << bits, TokenSlot{0, -1});
    for (const auto& [bytes, id] : bytes_to_id_) {
        uint64_t h = std::hash<std::string_view>{}(bytes);
        size_t i = static_cast<size_t>((h * kGolden) >> token_shift_);
        while (tokens_[i].id >= 0) i = (i + 1) & (tokens_.size() - 1);
        tokens_[i] = {h, id};
    }
    token_bloom_.assign(kBloomBits / 64, 0);
    for (const TokenSlot& t : tokens_)
        if (t.id >= 0) token_bloom_[(t.hash & (kBloomBits - 1)) >> 6] |= uint64_t{1} << (t.hash & 63);
    static std::atomic<uint64_t> next_serial{1};
    serial_ = next_serial++;
}

void Tokenizer::fill_pairs(const std::vector<PairSlot>& pairs) {
    int bits = 4;
    while ((size_t{1} << bits) < 2 * pairs.size()) ++bits;
    pair_shift_ = 64 - bits;
    pairs_.assign(size_t{1} << bits, PairSlot{kNoPair, -1});
    const size_t mask = pairs_.size() - 1;
    for (const PairSlot& f : pairs) {
        size_t i = static_cast<size_t>((uint64_t{f.key} * kGolden) >> pair_shift_);
        while (pairs_[i].key != kNoPair && pairs_[i].key != f.key) i = (i + 1) & mask;
        pairs_[i] = f;  // a pair has one concatenation, so a repeated key has the same rank
    }
}

// BPE of one token's bytes by the plain rule (the lowest rank, leftmost,
// merged until none is left) through pair_rank, at construction: its last
// merge, or (-1, -1) when it does not end in one part.
std::pair<int32_t, int32_t> Tokenizer::last_merge(std::string_view bytes) const {
    std::vector<int32_t> parts;
    for (unsigned char c : bytes) {
        if (byte_id_[c] < 0) return {-1, -1};
        parts.push_back(byte_id_[c]);
    }
    std::pair<int32_t, int32_t> last{-1, -1};
    while (parts.size() > 1) {
        int32_t low = -1;
        size_t at = 0;
        for (size_t i = 0; i + 1 < parts.size(); ++i)
            if (int32_t r = pair_rank(parts[i], parts[i + 1]); r >= 0 && (low < 0 || r < low))
                low = r, at = i;
        if (low < 0) return {-1, -1};
        last = {parts[at], parts[at + 1]};
        parts[at] = low;
        parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(at) + 1);
    }
    return last;
}

int32_t Tokenizer::token_id(std::string_view bytes, uint64_t hash) const {
    if (!(token_bloom_[(hash & (kBloomBits - 1)) >> 6] >> (hash & 63) & 1)) return -1;
    const size_t mask = tokens_.size() - 1;
    for (size_t i = static_cast<size_t>((hash * kGolden) >> token_shift_);; i = (i + 1) & mask) {
        const TokenSlot& s = tokens_[i];
        if (s.id < 0) return -1;
        if (s.hash == hash && id_to_bytes_[static_cast<size_t>(s.id)] == bytes) return s.id;
    }
}

int32_t Tokenizer::pair_rank(int32_t a, int32_t b) const {
    const uint32_t key = pair_key(a, b);
    const size_t mask = pairs_.size() - 1;
    for (size_t i = static_cast<size_t>((uint64_t{key} * kGolden) >> pair_shift_);; i = (i + 1) & mask) {
        if (pairs_[i].key == key) return pairs_[i].rank;
        if (pairs_[i].key == kNoPair) return -1;
    }
}

// Through the memo, then the Bloom filter (a clear bit: no pair), then the table.
int32_t Tokenizer::pair_rank(int32_t a, int32_t b, uint64_t* memo) const {
    const uint32_t key = pair_key(a, b);
    const uint64_t h = uint64_t{key} * kGolden;
    uint64_t& m = memo[h >> (64 - std::countr_zero(kPairMemo))];
    if (m >> 32 == key) return static_cast<int32_t>(m);
    const uint64_t bits = uint64_t{1} << (h >> 32 & 63) | uint64_t{1} << (h >> 38 & 63);
    int32_t r = (pair_bloom_[h >> 50] & bits) == bits ? pair_rank(a, b) : -1;
    m = uint64_t{key} << 32 | static_cast<uint32_t>(r);
    return r;
}

// Cuts that no merge crosses. A part is always a token made of the bytes it
// covers, so if no token's bytes equal a stretch of the piece that covers
// bytes p-1 and p, no part ever spans p: the piece ends up cut at p. Merges on
// either side of such a cut then happen in the same order as if each side were
// merged alone (each step takes the lowest rank, leftmost, which is the lowest
// of its own side too), so the two sides may be merged apart. A token over
// bytes p-1 and p is either those two bytes, or has three bytes covering
// p-2..p or p-1..p+1; so p is a cut when the two bytes are no token and
// neither three-byte window occurs inside any token (byte_pair_ answers the
// first: where both bytes are tokens, it holds every two-byte token; where one
// is not, the merge fails whatever is cut). In English without
// spaces one byte in ~25 is such a cut, which turns a megabyte-long pre-token
// into short, cache-local ones (a run of one letter has none: bpe_huge).
bool Tokenizer::is_cut(const unsigned char* s, size_t p) const {  // 2 <= p <= n-2
    auto inner = [this](uint32_t i) { return inner3_[i >> 6] >> (i & 63) & 1; };
    uint32_t two = uint32_t{s[p - 1]} << 8 | s[p];
    return byte_pair_[two] == kNoPair16 && !inner(uint32_t{s[p - 2]} << 16 | two) &&
           !inner(two << 8 | s[p + 1]);
}

namespace {

// The calling thread's word cache for one tokenizer at a time: pre-token ->
// ids in a fixed array of one-cache-line slots, direct-mapped by the piece's
// hash. A new entry overwrites its slot, so the cache is bounded by
// construction and a miss allocates nothing (random bytes miss on nearly
// every pre-token; a map of strings paid two allocations per miss and freed
// everything when full).
struct CacheSlot {
    uint64_t hash;
    uint8_t len;  // 0: empty
    uint8_t count;
    char bytes[Tokenizer::kCacheMaxPiece];
    int32_t ids[Tokenizer::kCacheMaxIds];
};
static_assert(sizeof(CacheSlot) == 64, "one cache line a slot");

// tags[i] holds 16 bits of the hash in slot i (0: empty), 64 KB that stay in
// L2: a miss (random bytes: nearly every pre-token) is told without touching
// the slot's cache line in the 2 MB array.
}  // namespace

struct Tokenizer::WordCache {
    uint64_t owner = 0;
    size_t used = 0;
    std::vector<CacheSlot, detail::HugePages<CacheSlot>> slots;
    std::vector<uint16_t> tags;
    std::vector<uint64_t> memo;  // Tokenizer::kPairMemo pair lookups; key ~0 (kNoPair): empty
};

namespace {
uint16_t cache_tag(uint64_t hash) { return static_cast<uint16_t>(hash >> 48) | 1; }
}  // namespace

// owner 0 only looks (cached_words).
Tokenizer::WordCache& Tokenizer::thread_cache(uint64_t owner) {
    thread_local WordCache cache;
    if (owner != 0 && cache.owner != owner) {
        cache.slots.assign(Tokenizer::kCacheEntries, CacheSlot{});
        cache.tags.assign(Tokenizer::kCacheEntries, 0);
        cache.memo.assign(Tokenizer::kPairMemo, ~uint64_t{0});
        cache.used = 0;
        cache.owner = owner;
    }
    return cache;
}

// BPE of one stretch (a short pre-token, or a part between cuts), appended to
// ids, through the word cache: bytes -> their merges. English repeats its
// stretches (words; in text without spaces, runs between cuts), so the cache
// serves long pre-tokens too. No whole-token shortcut here: a stretch merges as
// BPE does (tiktoken looks up only whole pre-tokens, which bpe() does first).
bool Tokenizer::merge_cached(std::string_view part, uint64_t hash, std::vector<int32_t>& ids,
                             WordCache& cache) const {
    CacheSlot* slot = nullptr;
    const size_t i = hash & (kCacheEntries - 1);
    if (part.size() <= kCacheMaxPiece) {
        slot = &cache.slots[i];
        if (cache.tags[i] == cache_tag(hash) && slot->len == part.size() && slot->hash == hash &&
            std::memcmp(slot->bytes, part.data(), part.size()) == 0) {
            ids.insert(ids.end(), slot->ids, slot->ids + slot->count);
            return true;
        }
    }
    const size_t before = ids.size();
    uint64_t* memo = cache.memo.data();
    bool ok = part.size() <= kShortPiece  ? bpe_short(part, ids, memo)
              : part.size() <= kHugePiece ? bpe_long(part, ids, memo)
                                          : bpe_huge(part, ids, memo);
    const size_t count = ids.size() - before;
    if (ok && slot && count <= kCacheMaxIds) {
        cache.used += cache.tags[i] == 0;
        cache.tags[i] = cache_tag(hash);
        slot->hash = hash;
        slot->len = static_cast<uint8_t>(part.size());
        slot->count = static_cast<uint8_t>(count);
        std::memcpy(slot->bytes, part.data(), part.size());
        std::copy(ids.begin() + static_cast<std::ptrdiff_t>(before), ids.end(), slot->ids);
    }
    return ok;
}

// BPE of a pre-token that is not itself a token, appended to ids: whole when
// short, else cut where no merge crosses and each stretch merged alone.
bool Tokenizer::merge(std::string_view piece, uint64_t hash, std::vector<int32_t>& ids,
                      WordCache& cache) const {
    if (piece.size() <= kWholePiece) return merge_cached(piece, hash, ids, cache);
    auto s = reinterpret_cast<const unsigned char*>(piece.data());
    size_t start = 0;
    auto stretch = [&](size_t end) {
        std::string_view part = piece.substr(start, end - start);
        start = end;
        return merge_cached(part, std::hash<std::string_view>{}(part), ids, cache);
    };
    for (size_t p = 2; p + 2 <= piece.size(); ++p)
        if (is_cut(s, p) && !stretch(p)) return false;
    return stretch(piece.size());
}

namespace {
// Sixteen int32 lanes: GCC's generic vectors (one AVX-512 register under
// -march=native on a machine that has it, two AVX2 or four SSE2 registers
// elsewhere; the same code either way).
using Lanes = int32_t __attribute__((vector_size(64)));
constexpr size_t kLanes = 16;
// bpe_short's keys: rank << kPosBits | position, so the integer minimum is the
// lowest rank, leftmost on ties, and names its position. A pair that merges
// into no token has rank kNoPair16 (0xFFFF: ids are < 65535), so its key is
// above kMaxKey without a branch (whether two random bytes make a token is a
// coin toss the branch predictor lost); the padding past the pairs is kNoKey.
constexpr int kPosBits = 9;
constexpr int32_t kNoKey = INT32_MAX;
constexpr int32_t kMaxKey = (int32_t{kNoPair16} << kPosBits) - 1;
static_assert(Tokenizer::kShortPiece <= size_t{1} << kPosBits, "a position fits its bits");

// The lowest of r[0, k), k >= 1. Entries past k up to a multiple of kLanes
// must be above kMaxKey. A plain minimum: one vpminsd a lane group, where
// carrying each lane's position along cost two blends on the critical path.
int32_t lowest(const int32_t* r, size_t k) {
    if (k <= 8) {  // most pre-tokens: a scalar scan costs less than reducing the lanes
        int32_t low = r[0];
        for (size_t i = 1; i < k; ++i) low = std::min(low, r[i]);
        return low;
    }
    Lanes low;
    std::memcpy(&low, r, sizeof low);
    for (size_t i = kLanes; i < k; i += kLanes) {
        Lanes v;
        std::memcpy(&v, r + i, sizeof v);
        low = v < low ? v : low;
    }
    using Half = int32_t __attribute__((vector_size(32)));
    using Quarter = int32_t __attribute__((vector_size(16)));
    Half h = __builtin_shufflevector(low, low, 0, 1, 2, 3, 4, 5, 6, 7);
    const Half g = __builtin_shufflevector(low, low, 8, 9, 10, 11, 12, 13, 14, 15);
    h = g < h ? g : h;
    Quarter q = __builtin_shufflevector(h, h, 0, 1, 2, 3);
    const Quarter u = __builtin_shufflevector(h, h, 4, 5, 6, 7);
    q = u < q ? u : q;
    return std::min(std::min(q[0], q[1]), std::min(q[2], q[3]));
}
// r[i] = r[i + 1] - dec for i in [from, to): a forward copy a lane group at a
// time (inline; libc's memmove call cost more than the copy at these sizes).
// r must have kLanes readable entries past `to`.
void shift_down(int32_t* r, size_t from, size_t to, int32_t dec) {
    for (size_t i = from; i < to; i += kLanes) {
        Lanes v;
        std::memcpy(&v, r + i + 1, sizeof v);
        v -= dec;
        std::memcpy(r + i, &v, sizeof v);
    }
}
}  // namespace

// Short pre-tokens (almost all) and stretches: tiktoken's own loop. key[i]
// packs the rank of merging parts i and i+1 with i (kNoKey: no token); each
// round merges the lowest key (the lowest rank, leftmost on ties), drops the
// right part by shifting the arrays down one (a shifted key's position drops
// by one with it), then looks up only the two pairs that changed: n lookups
// plus two per merge, and O(n^2) integer compares on n <= kShortPiece bytes,
// sixteen a step. That made the scan cheaper than the heap up to 512 bytes.
bool Tokenizer::bpe_short(std::string_view piece, std::vector<int32_t>& ids, uint64_t* memo) const {
    const size_t n = piece.size();
    if (n == 0) return true;
    int32_t id[kShortPiece + 2 * kLanes], key[kShortPiece + 2 * kLanes];
    for (size_t i = 0; i < n; ++i) {
        id[i] = byte_id_[static_cast<unsigned char>(piece[i])];
        if (id[i] < 0) return false;
    }
    auto key_of = [](int32_t rank, size_t i) {  // rank -1: no token
        return (rank < 0 ? int32_t{kNoPair16} : rank) << kPosBits | static_cast<int32_t>(i);
    };
    auto s = reinterpret_cast<const unsigned char*>(piece.data());
    for (size_t i = 0; i + 1 < n; ++i)
        key[i] = int32_t{byte_pair_[static_cast<size_t>(s[i]) << 8 | s[i + 1]]} << kPosBits |
                 static_cast<int32_t>(i);
    std::fill(key + n - 1, key + n - 1 + 2 * kLanes, kNoKey);
    std::fill(id + n, id + n + 2 * kLanes, 0);  // shift_down reads past the parts; never used
    // m: parts left; key[0 .. m-2] are valid, the rest above kMaxKey
    size_t m = n;
    while (m > 1) {
        const int32_t low = lowest(key, m - 1);
        if (low > kMaxKey) break;
        const size_t at = static_cast<size_t>(low & ((1 << kPosBits) - 1));
        id[at] = low >> kPosBits;
        shift_down(id, at + 1, m - 1, 0);  // drop part at+1
        shift_down(key, at + 1, m - 1, 1);
        key[m - 2] = kNoKey;
        --m;
        if (at + 1 < m) key[at] = key_of(pair_rank(id[at], id[at + 1], memo), at);
        if (at > 0) key[at - 1] = key_of(pair_rank(id[at - 1], id[at], memo), at - 1);
    }
    ids.insert(ids.end(), id, id + m);
    return true;
}

namespace {

// The parts of a long pre-token: a doubly linked list over byte positions (a
// part is named by its first byte) with the rank of the pair each part starts
// (kNoRank when it starts none, or was merged away). One 16-byte record a
// part: a merge touches a part and its neighbours in as few cache lines as
// possible, which is what the long paths spend their time on.
struct Parts {
    struct Part {
        int32_t id, prev, next, rank;
    };
    std::vector<Part> at;
    // Single bytes; false if a byte is no token.
    bool init(std::string_view piece, const int32_t* byte_id) {
        const int32_t n = static_cast<int32_t>(piece.size());
        at.resize(piece.size());
        for (int32_t i = 0; i < n; ++i) {
            int32_t id = byte_id[static_cast<unsigned char>(piece[static_cast<size_t>(i)])];
            if (id < 0) return false;
            at[static_cast<size_t>(i)] = {id, i - 1, i + 1 < n ? i + 1 : -1, kNoRank};
        }
        return true;
    }
    Part& operator[](int32_t i) { return at[static_cast<size_t>(i)]; }
    // Merge part l with its right neighbour into token `t`.
    void merge(int32_t l, int32_t t) {
        Part& left = (*this)[l];
        Part& right = (*this)[left.next];
        left.id = t;
        left.next = right.next;
        if (right.next >= 0) (*this)[right.next].prev = l;
        right.rank = kNoRank;  // merged away: its queued entries are stale
    }
    void ids(std::vector<int32_t>& out) {  // appended
        for (int32_t i = 0; i >= 0; i = (*this)[i].next) out.push_back((*this)[i].id);
    }
};

}  // namespace

namespace {

// The merge loop of both long paths, whatever queue keeps the candidates (the
// queue's pop gives the lowest rank, then the leftmost position). offer()
// (re)computes the pair a part starts and queues it if it merges. An entry is
// stale when its part's current pair has another rank (the pair changed or the
// part was merged away); stale entries are skipped when popped. A changed pair
// with the same rank is the same merge (its token is the same concatenation),
// so it may be taken from either entry; the other is then stale (the merged
// part's next pair is longer, so its rank differs).
template <class Queue, class FirstRank, class PairRank>
void merge_parts(Parts& p, Queue& q, const FirstRank& first_rank, const PairRank& pair_rank,
                 std::vector<int32_t>& ids) {
    auto queue = [&](int32_t l, int32_t r) {
        p[l].rank = r < 0 ? kNoRank : r;
        if (r >= 0) q.push(r, l);
    };
    auto offer = [&](int32_t l) { queue(l, p[l].next < 0 ? -1 : pair_rank(p[l].id, p[p[l].next].id)); };
    const int32_t n = static_cast<int32_t>(p.at.size());
    for (int32_t i = 0; i + 1 < n; ++i) queue(i, first_rank(i));  // the parts are still single bytes
    if (n > 0) queue(n - 1, -1);
    q.start();
    while (!q.empty()) {
        auto [rank, l] = q.pop();
        if (p[l].rank != rank) continue;  // stale
        p.merge(l, rank);
        offer(l);
        if (p[l].prev >= 0) offer(p[l].prev);
    }
    p.ids(ids);
}

// bpe_long's queue: one min-heap of packed keys rank << 32 | position, so
// integer order is "lowest rank, then leftmost"; the first pass's entries are
// heapified at once (start), later ones pushed.
struct HeapQueue {
    std::vector<uint64_t> heap;
    bool started = false;
    void push(int32_t rank, int32_t at) {
        heap.push_back(static_cast<uint64_t>(rank) << 32 | static_cast<uint32_t>(at));
        if (started) std::push_heap(heap.begin(), heap.end(), std::greater<>{});
    }
    void start() {
        std::make_heap(heap.begin(), heap.end(), std::greater<>{});
        started = true;
    }
    bool empty() const { return heap.empty(); }
    std::pair<int32_t, int32_t> pop() {
        std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
        uint64_t k = heap.back();
        heap.pop_back();
        return {static_cast<int32_t>(k >> 32), static_cast<int32_t>(k)};
    }
};

// The candidate positions of one rank in bpe_huge: `run` ascending (read from
// `head` on), and `late`, a min-heap of positions that arrived out of order.
struct RankQueue {
    std::vector<int32_t> run, late;
    size_t head = 0;
    bool empty() const { return head == run.size() && late.empty(); }
    void push(int32_t at) {
        if (head == run.size() || at > run.back()) {
            run.push_back(at);
        } else {
            late.push_back(at);
            std::push_heap(late.begin(), late.end(), std::greater<>{});
        }
    }
    int32_t pop() {  // the leftmost
        if (!late.empty() && (head == run.size() || late.front() < run[head])) {
            std::pop_heap(late.begin(), late.end(), std::greater<>{});
            int32_t at = late.back();
            late.pop_back();
            return at;
        }
        return run[head++];
    }
};

// bpe_huge's queue: a heap of the ranks that have candidates, and per rank its
// positions (RankQueue).
struct TwoLevelQueue {
    std::vector<RankQueue> queue;  // by rank
    std::vector<int32_t> ranks;    // the ranks whose queue is not empty, a min-heap
    explicit TwoLevelQueue(size_t n_ranks) : queue(n_ranks) {}
    void push(int32_t rank, int32_t at) {
        RankQueue& q = queue[static_cast<size_t>(rank)];
        if (q.empty()) {
            ranks.push_back(rank);
            std::push_heap(ranks.begin(), ranks.end(), std::greater<>{});
        }
        q.push(at);
    }
    void start() {}
    bool empty() const { return ranks.empty(); }
    std::pair<int32_t, int32_t> pop() {
        int32_t rank = ranks.front();
        RankQueue& q = queue[static_cast<size_t>(rank)];
        int32_t at = q.pop();
        if (q.empty()) {
            std::pop_heap(ranks.begin(), ranks.end(), std::greater<>{});
            ranks.pop_back();
        }
        return {rank, at};
    }
};

}  // namespace

// The rank of merging bytes i and i+1 of `piece`, from byte_pair_ (-1: none).
auto Tokenizer::first_rank(std::string_view piece) const {
    return [this, s = reinterpret_cast<const unsigned char*>(piece.data())](int32_t i) {
        uint16_t r = byte_pair_[static_cast<size_t>(s[i]) << 8 | s[i + 1]];
        return r == kNoPair16 ? -1 : int32_t{r};
    };
}

// Both long paths: the parts as a linked list, merged in the queue's order.
template <class Queue>
bool Tokenizer::merge_queued(std::string_view piece, Queue& q, std::vector<int32_t>& ids,
                             uint64_t* memo) const {
    Parts p;
    if (!p.init(piece, byte_id_)) return false;
    merge_parts(
        p, q, first_rank(piece), [&](int32_t a, int32_t b) { return pair_rank(a, b, memo); }, ids);
    return true;
}

// Long pre-tokens (a line without spaces): the same merges in O(n log n), the
// candidates in one heap (HeapQueue).
bool Tokenizer::bpe_long(std::string_view piece, std::vector<int32_t>& ids, uint64_t* memo) const {
    HeapQueue q;
    q.heap.reserve(piece.size());
    return merge_queued(piece, q, ids, memo);
}

// Huge pre-tokens (a megabyte of letters, or of one letter): one heap of
// millions of entries misses the cache at every level of every pop. Two levels
// keep the same order, rank then position: a heap of the ranks that have
// candidates, and per rank its positions, mostly an ascending run (the first
// pass, and the merges of one rank's left-to-right sweep, find them in that
// order), so most pops read the next entry of an array.
bool Tokenizer::bpe_huge(std::string_view piece, std::vector<int32_t>& ids, uint64_t* memo) const {
    TwoLevelQueue q(id_to_bytes_.size());
    return merge_queued(piece, q, ids, memo);
}

size_t Tokenizer::cached_words() { return thread_cache(0).used; }

bool Tokenizer::bpe(std::string_view piece, std::vector<int64_t>& out, std::vector<int32_t>& ids) const {
    // One and two bytes (over half the pre-tokens of random bytes) need no hash
    // when their bytes are tokens (GPT-2's are all): a byte is its token, and two
    // bytes are one token exactly when their pair merges, which byte_pair_ holds.
    // Otherwise (a vocabulary without some byte) the general path below decides.
    auto s = reinterpret_cast<const unsigned char*>(piece.data());
    const int32_t a = byte_id_[s[0]], b = piece.size() == 2 ? byte_id_[s[1]] : 0;
    if (piece.size() <= 2 && a >= 0 && b >= 0) {
        uint16_t ab = piece.size() == 1 ? kNoPair16 : byte_pair_[size_t{s[0]} << 8 | s[1]];
        out.push_back(ab != kNoPair16 ? ab : a);
        if (piece.size() == 2 && ab == kNoPair16) out.push_back(b);
        return true;
    }
    const uint64_t hash = std::hash<std::string_view>{}(piece);
    if (int32_t id = token_id(piece, hash); id >= 0) {
        out.push_back(id);
        return true;
    }
    ids.clear();
    if (!merge(piece, hash, ids, thread_cache(serial_))) return false;
    out.insert(out.end(), ids.begin(), ids.end());
    return true;
}

std::string Tokenizer::encode_ordinary(std::string_view text, std::vector<int64_t>& out) const {
    std::vector<int32_t> scratch;  // one pre-token's ids, reused
    for (size_t pos = 0; pos < text.size();) {
        const size_t end = pre_.end_of(text, pos);
        if (!bpe(text.substr(pos, end - pos), out, scratch))
            return "the text has a byte that is no token of encoder.json (a byte-level vocabulary has all "
                   "256)";
        pos = end;
    }
    return {};
}

std::vector<size_t> Tokenizer::split_points(std::string_view text, size_t target) {
    auto word_byte = [](unsigned char c) { return c >= 0x21 && c <= 0x7E; };  // ASCII, not whitespace
    std::vector<size_t> cuts;
    size_t p = std::max<size_t>(target, 1);
    while (p < text.size()) {
        bool before_space = text[p] == ' ' && word_byte(static_cast<unsigned char>(text[p - 1]));
        // A whitespace run of two or more before p would end differently at the
        // end of a piece ("\s+(?!\S)" keeps its last character apart only when
        // a non-space follows), so the newline must stand alone.
        bool after_newline = p >= 2 && text[p - 1] == '\n' &&
                             word_byte(static_cast<unsigned char>(text[p])) &&
                             word_byte(static_cast<unsigned char>(text[p - 2]));
        if (before_space || after_newline) {
            cuts.push_back(p);
            p += std::max<size_t>(target, 1);
        } else {
            ++p;
        }
    }
    return cuts;
}

std::vector<int64_t> Tokenizer::encode_valid(const std::string& text, bool allow_special,
                                             bool parallel) const {
    // Segments between special tokens are encoded independently (tiktoken's rule).
    std::vector<std::string_view> segments;
    std::string_view rest(text);
    static constexpr std::string_view eot = "<|endoftext|>";
    while (allow_special) {
        size_t hit = rest.find(eot);
        if (hit == std::string_view::npos) break;
        segments.push_back(rest.substr(0, hit));
        rest.remove_prefix(hit + eot.size());
    }
    segments.push_back(rest);
    // Pieces: each segment cut at safe boundaries when parallel.
    std::vector<std::string_view> pieces;
    std::vector<bool> eot_after;
    for (size_t s = 0; s < segments.size(); ++s) {
        std::string_view seg = segments[s];
        size_t start = 0;
        if (parallel)
            for (size_t cut : split_points(seg, kParallelChunk)) {
                pieces.push_back(seg.substr(start, cut - start));
                eot_after.push_back(false);
                start = cut;
            }
        pieces.push_back(seg.substr(start));
        eot_after.push_back(s + 1 < segments.size());
    }
    // Serially the ids go straight to `out`, without a copy. Reserved for
    // English's ~0.25 ids a byte; denser text (random bytes: ~0.45 a sanitised
    // byte, a run of spaces ~1) grows it.
    if (!parallel) {
        std::vector<int64_t> out;
        out.reserve(text.size() / 4 + pieces.size());
        for (size_t i = 0; i < pieces.size(); ++i) {
            if (std::string error = encode_ordinary(pieces[i], out); !error.empty())
                throw Error("tapegrad: tokenizer: " + error);
            if (eot_after[i]) out.push_back(kEndOfText);
        }
        return out;
    }
    std::vector<std::vector<int64_t>> ids(pieces.size());
    std::vector<std::string> errors(pieces.size());
    parallel_for(static_cast<int64_t>(pieces.size()), 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            try {  // nothing may leave an OpenMP worker: errors go back as text
                ids[i].reserve(pieces[i].size() / 4);
                errors[i] = encode_ordinary(pieces[i], ids[i]);
            } catch (const std::exception& err) {
                errors[i] = err.what();
            }
        }
    });
    std::vector<int64_t> out;
    size_t total = 0;
    for (auto& v : ids) total += v.size() + 1;
    out.reserve(total);
    for (size_t i = 0; i < pieces.size(); ++i) {
        if (!errors[i].empty()) throw Error("tapegrad: tokenizer: " + errors[i]);
        out.insert(out.end(), ids[i].begin(), ids[i].end());
        if (eot_after[i]) out.push_back(kEndOfText);
    }
    return out;
}

std::vector<int64_t> Tokenizer::encode(const std::string& raw, bool allow_special) const {
    return encode_valid(sanitize_utf8(raw), allow_special, false);
}

std::vector<int64_t> Tokenizer::encode_parallel(const std::string& raw, bool allow_special) const {
    return encode_valid(sanitize_utf8(raw), allow_special, true);
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
    std::string out;
    for (int64_t id : ids) {
        if (id < 0 || id >= vocab_size())
            throw Error(fmt::format("tapegrad: tokenizer: unknown token id {}", id));
        out += id_to_bytes_[id];
    }
    return out;
}

}  // namespace tg::train
