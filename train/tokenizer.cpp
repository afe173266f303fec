#include "train/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fmt/format.h>
#include <pcre2.h>

#include <atomic>
#include <climits>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>

#include "core/parallel.h"
#include "core/tensor.h"

namespace tg::train {
namespace {

const char* kPattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

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

uint64_t pair_key(int32_t a, int32_t b) {
    return static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32 | static_cast<uint32_t>(b);
}

int line_of(const std::string& text, size_t byte) {
    int line = 1;
    for (size_t i = 0; i < byte && i < text.size(); ++i) line += text[i] == '\n';
    return line;
}

std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("tapegrad: tokenizer: cannot open '" + path + "'");
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace

struct Tokenizer::Regex {
    pcre2_code* code = nullptr;
    ~Regex() {
        if (code) pcre2_code_free(code);
    }
};

std::string Tokenizer::sanitize_utf8(const std::string& s, Utf8Report* report) {
    auto replaced = [&](size_t at) {
        if (!report) return;
        if (report->replaced++ == 0) report->first_offset = static_cast<int64_t>(at);
    };
    // The WHATWG UTF-8 decoder: a byte that cannot continue the current
    // sequence ends it (one U+FFFD) and is reprocessed.
    std::string out;
    out.reserve(s.size());
    size_t i = 0, n = s.size();
    while (i < n) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        int need = 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            out.push_back(static_cast<char>(c));
            ++i;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            out += "\xEF\xBF\xBD";
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
            out.append(s, i, j - i);
        } else {
            out += "\xEF\xBF\xBD";
            replaced(i);
        }
        i = j;
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

Tokenizer::Tokenizer(const std::string& enc_path, const std::string& bpe_path)
    : re_(std::make_unique<Regex>()) {
    std::vector<uint32_t> b2c = byte_to_codepoint();
    std::unordered_map<uint32_t, uint8_t> c2b;
    for (int b = 0; b < 256; ++b) c2b[b2c[b]] = static_cast<uint8_t>(b);

    std::string enc_text = read_all(enc_path);
    nlohmann::json enc;
    try {
        enc = nlohmann::json::parse(enc_text);
    } catch (const nlohmann::json::parse_error& e) {
        throw Error(fmt::format("tapegrad: tokenizer: {}:{}: not valid JSON ({})", enc_path,
                                line_of(enc_text, e.byte), e.what()));
    }
    if (!enc.is_object() || enc.empty())
        throw Error("tapegrad: tokenizer: " + enc_path + ":1: expected a JSON object of token -> id");
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

    std::istringstream bpe(read_all(bpe_path));
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

    int err = 0;
    PCRE2_SIZE off = 0;
    re_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    if (!re_->code) throw Error("tapegrad: tokenizer: PCRE2 rejected the GPT-2 pattern");
    // JIT makes matching ~5x faster; without it (an unsupported CPU) the
    // interpreter gives the same matches.
    pcre2_jit_compile(re_->code, PCRE2_JIT_COMPLETE);
}

Tokenizer::~Tokenizer() = default;

// The pair table: for every token t and every cut t = a + b where a and b are
// tokens, (a, b) -> t. The rank of merging a and b is t's id (tiktoken's rule:
// the rank of a byte string is its id, and GPT-2's ids follow merge order).
void Tokenizer::build_pairs() {
    for (int b = 0; b < 256; ++b) {
        auto it = bytes_to_id_.find(std::string_view(reinterpret_cast<const char*>(&b), 1));
        byte_id_[b] = it == bytes_to_id_.end() ? -1 : it->second;
    }
    for (const auto& [bytes, id] : bytes_to_id_) {
        std::string_view t(bytes);
        for (size_t k = 1; k < t.size(); ++k) {
            auto a = bytes_to_id_.find(t.substr(0, k));
            if (a == bytes_to_id_.end()) continue;
            auto b = bytes_to_id_.find(t.substr(k));
            if (b == bytes_to_id_.end()) continue;
            pairs_.emplace(pair_key(a->second, b->second), id);
        }
    }
    static std::atomic<uint64_t> next_serial{1};
    serial_ = next_serial++;
}

int32_t Tokenizer::pair_rank(int32_t a, int32_t b) const {
    auto it = pairs_.find(pair_key(a, b));
    return it == pairs_.end() ? -1 : it->second;
}

// Short pre-tokens (almost all): rescan the pairs after each merge, O(n^2) with
// a tiny n. The lowest rank wins; the leftmost pair on ties.
bool Tokenizer::bpe_short(std::string_view piece, std::vector<int32_t>& ids) const {
    ids.clear();
    for (unsigned char c : piece) {
        if (byte_id_[c] < 0) return false;
        ids.push_back(byte_id_[c]);
    }
    while (ids.size() > 1) {
        int32_t best = INT32_MAX;
        size_t at = 0;
        for (size_t i = 0; i + 1 < ids.size(); ++i) {
            int32_t r = pair_rank(ids[i], ids[i + 1]);
            if (r >= 0 && r < best) {
                best = r;
                at = i;
            }
        }
        if (best == INT32_MAX) break;
        ids[at] = best;
        ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(at) + 1);
    }
    return true;
}

// Long pre-tokens (a line without spaces, a run of one character): the same
// merges in O(n log n). Parts form a linked list indexed by their first byte;
// a min-heap holds candidate pairs ordered by (rank, position), so pops follow
// "lowest rank, leftmost first". An entry is stale once either part changed;
// stale entries are skipped when popped.
bool Tokenizer::bpe_long(std::string_view piece, std::vector<int32_t>& ids) const {
    const int32_t n = static_cast<int32_t>(piece.size());
    struct Part {
        int32_t id, prev, next;
    };
    struct Cand {
        int32_t rank, left, left_id, right_id;
        bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::vector<Part> part(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) {
        int32_t id = byte_id_[static_cast<unsigned char>(piece[static_cast<size_t>(i)])];
        if (id < 0) return false;
        part[i] = {id, i - 1, i + 1 < n ? i + 1 : -1};
    }
    std::vector<Cand> storage;
    storage.reserve(static_cast<size_t>(n));
    std::priority_queue<Cand, std::vector<Cand>, std::greater<>> heap(std::greater<>{}, std::move(storage));
    auto offer = [&](int32_t l) {
        if (l < 0 || part[l].next < 0) return;
        int32_t r = part[l].next;
        int32_t rank = pair_rank(part[l].id, part[r].id);
        if (rank >= 0) heap.push({rank, l, part[l].id, part[r].id});
    };
    for (int32_t i = 0; i + 1 < n; ++i) offer(i);
    while (!heap.empty()) {
        Cand c = heap.top();
        heap.pop();
        int32_t r = part[c.left].next;
        if (part[c.left].id != c.left_id || r < 0 || part[r].id != c.right_id) continue;  // stale
        part[c.left].id = c.rank;
        part[c.left].next = part[r].next;
        if (part[r].next >= 0) part[part[r].next].prev = c.left;
        part[r].id = -1;  // merged away
        offer(part[c.left].prev);
        offer(c.left);
    }
    ids.clear();
    for (int32_t i = 0; i >= 0; i = part[i].next) ids.push_back(part[i].id);
    return true;
}

namespace {

// The calling thread's word cache: pre-token -> ids, for one tokenizer at a time.
struct WordCache {
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    uint64_t owner = 0;
    std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> map;
};

// owner 0 only looks (cached_words).
WordCache& thread_cache(uint64_t owner) {
    thread_local WordCache cache;
    if (owner != 0 && cache.owner != owner) {
        cache.map.clear();
        cache.owner = owner;
    }
    return cache;
}

}  // namespace

size_t Tokenizer::cached_words() { return thread_cache(0).map.size(); }

bool Tokenizer::bpe(std::string_view piece, std::vector<int64_t>& out) const {
    if (auto it = bytes_to_id_.find(piece); it != bytes_to_id_.end()) {
        out.push_back(it->second);
        return true;
    }
    bool cacheable = piece.size() <= kCacheMaxPiece;
    WordCache* cache = cacheable ? &thread_cache(serial_) : nullptr;
    if (cache) {
        if (auto c = cache->map.find(piece); c != cache->map.end()) {
            out.insert(out.end(), c->second.begin(), c->second.end());
            return true;
        }
    }
    std::vector<int32_t> ids;
    bool ok = piece.size() <= kShortPiece ? bpe_short(piece, ids) : bpe_long(piece, ids);
    if (!ok) return false;
    out.insert(out.end(), ids.begin(), ids.end());
    if (cache) {
        if (cache->map.size() >= kCacheEntries) cache->map.clear();  // bounded: start afresh
        cache->map.emplace(std::string(piece), std::move(ids));
    }
    return true;
}

bool Tokenizer::encode_ordinary(std::string_view text, std::vector<int64_t>& out) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(re_->code, nullptr);
    auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t pos = 0;
    bool ok = true;
    while (pos < text.size() && ok) {
        // The text is valid UTF-8 (sanitised once): without NO_UTF_CHECK, PCRE2
        // re-validates from pos to the end at every call, O(n^2) in all.
        int rc = pcre2_match(re_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc < 0) break;  // every byte matches one alternative; no match means the end
        PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) break;
        ok = bpe(text.substr(ov[0], ov[1] - ov[0]), out);
        pos = ov[1];
    }
    pcre2_match_data_free(md);
    return ok;
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
    std::vector<std::vector<int64_t>> ids(pieces.size());
    std::vector<char> ok(pieces.size(), 1);
    auto run = [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            ids[i].reserve(pieces[i].size() / 3);
            ok[i] = encode_ordinary(pieces[i], ids[i]);
        }
    };
    if (parallel)
        parallel_for(static_cast<int64_t>(pieces.size()), 1, run);
    else
        run(0, static_cast<int64_t>(pieces.size()));
    std::vector<int64_t> out;
    size_t total = 0;
    for (auto& v : ids) total += v.size() + 1;
    out.reserve(total);
    for (size_t i = 0; i < pieces.size(); ++i) {
        if (!ok[i])
            throw Error(
                "tapegrad: tokenizer: the text has a byte that is no token of encoder.json (a byte-level "
                "vocabulary has all 256)");
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
