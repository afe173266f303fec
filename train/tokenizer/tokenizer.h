// GPT-2's byte-level BPE, matching tiktoken's `gpt2` encoding token for token.
//
//   text -> (invalid UTF-8 -> U+FFFD) -> pre-tokens by GPT-2's pattern
//        -> each pre-token's bytes merged pairwise by rank -> ids
//
// The pre-tokenisation pattern needs Unicode letter and number classes:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// PreTokenizer (train/tokenizer/pretokenizer.h) splits as PCRE2 (UTF + UCP) matches it,
// by hand, with the classes from PCRE2's Unicode tables.
// encoder.json maps byte-to-unicode-escaped strings to ids; vocab.bpe lists the
// merges by rank after a "#version" line (checked against encoder.json). As in
// tiktoken, the rank of an adjacent pair (a, b) is the id of the token a+b, and
// the lowest-ranked pair (leftmost on ties) is merged first. <|endoftext|>
// (50256) is a special token only when allowed; otherwise it is ordinary text
// (tiktoken's encode_ordinary).
//
// Time is linear in the input, and adversarial inputs (random bytes, a long
// line without spaces, a long run of one letter) avoid slow paths per byte:
//  - the text is made valid UTF-8 once, and pre-tokenised in one pass by
//    PreTokenizer (PCRE2 re-validated the rest of the subject at every match,
//    which made encoding quadratic, and then cost a call per pre-token);
//  - token and pair lookups use flat open-addressing tables on huge pages;
//    what misses the L2 cache is asked of small tables first: one or two bytes
//    need no hash (byte_pair_, 128 KB, holds every two-byte merge), a clear bit
//    of token_bloom_ (128 KB) proves a pre-token is no token, the word cache's
//    16-bit tags (64 KB) tell a miss, a per-thread memo of recent pair
//    lookups serves most merges (random bytes merge U+FFFD's bytes over and over),
//    and a Bloom filter over the pairs (128 KB) answers most pairs that do not merge;
//  - a pre-token is cut where no token can span the cut (see is_cut), so a
//    megabyte of letters merges as stretches of ~25 bytes on average; those of
//    up to kCacheMaxPiece bytes go through the word cache;
//  - a stretch of up to kShortPiece bytes merges by tiktoken's scan over an
//    array of packed (rank, position) keys (O(n) lookups, O(n^2) integer
//    compares, sixteen at a time in vector registers); a longer one
//    with a linked list and a heap of packed (rank, position) keys with lazy
//    invalidation, O(n log n); a huge one (a run of one letter has no cuts)
//    with per-rank queues of positions that are mostly read in order;
//  - the pair table holds each token's canonical split only (the last merge of
//    BPE of its own bytes): 50,000 pairs, where every cut of a token into two
//    tokens made 108,299, and no merge joins any other (see build_pairs);
//  - the word cache is a fixed array of 64-byte slots, so a miss (nearly every
//    pre-token of random bytes) allocates nothing and evicts nothing else.
// A megabyte of random bytes makes ~4x the ids and ~2.4x the pre-tokens of a
// megabyte of English (its invalid bytes become 3-byte U+FFFD: 1.9 MB to encode).
//
// Threads: after construction only the pre-tokenizer's character classes
// change (each block filled once, published atomically). The word cache
// (stretch bytes -> ids, with the pair memo) is per thread and bounded
// (kCacheEntries slots, a new entry overwrites its slot), so any number of
// threads may encode with one Tokenizer. encode_parallel splits the text at boundaries no pre-token
// crosses and encodes the pieces on the thread pool; its ids equal encode()'s.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "train/tokenizer/pretokenizer.h"

namespace tg::train {

namespace detail {
// An allocator for the tokenizer's large lookup tables: blocks of 2 MB and more
// are 2 MB aligned and madvise(MADV_HUGEPAGE)d. Lookups land at random in
// tables of 2-4 MB, and with 4 KB pages nearly every one also missed the TLB.
void* huge_page_alloc(size_t bytes);
void huge_page_free(void* p, size_t bytes);  // bytes as allocated
template <class T>
struct HugePages {
    using value_type = T;
    HugePages() = default;
    template <class U>
    HugePages(const HugePages<U>&) {}
    T* allocate(size_t n) { return static_cast<T*>(huge_page_alloc(n * sizeof(T))); }
    void deallocate(T* p, size_t n) { huge_page_free(p, n * sizeof(T)); }
    template <class U>
    bool operator==(const HugePages<U>&) const {
        return true;
    }
};
}  // namespace detail

class Tokenizer {
public:
    static constexpr int64_t kEndOfText = 50256;
    static constexpr size_t kCacheEntries = 1 << 15;   // slots per thread (64 bytes each)
    static constexpr size_t kCacheMaxPiece = 22;       // longer stretches are not cached
    static constexpr size_t kCacheMaxIds = 8;          // nor are those of more tokens
    static constexpr size_t kPairMemo = 1 << 14;       // recent pair lookups per thread (128 KB, in L2)
    static constexpr size_t kWholePiece = 128;         // longer pre-tokens are cut first (is_cut)
    static constexpr size_t kShortPiece = 512;         // longer stretches merge with a heap
    static constexpr size_t kHugePiece = 1 << 13;      // longer stretches merge with per-rank heaps
    static constexpr size_t kParallelChunk = 1 << 16;  // bytes per piece in encode_parallel

    // Throws naming the file and line of any malformed entry.
    Tokenizer(const std::string& encoder_json_path, const std::string& vocab_bpe_path);
    ~Tokenizer();
    Tokenizer(const Tokenizer&) = delete;
    Tokenizer& operator=(const Tokenizer&) = delete;

    std::vector<int64_t> encode(const std::string& text, bool allow_special = false) const;
    // The same ids, with chunks of the text encoded on all threads of the pool.
    std::vector<int64_t> encode_parallel(const std::string& text, bool allow_special = false) const;
    std::string decode(const std::vector<int64_t>& ids) const;  // throws on an unknown id
    int64_t vocab_size() const { return static_cast<int64_t>(id_to_bytes_.size()); }

    // Replace invalid UTF-8 with U+FFFD, one per maximal invalid subpart (WHATWG),
    // as tiktoken does. When `report` is given it receives how many were
    // replaced and the byte offset of the first.
    struct Utf8Report {
        int64_t replaced = 0;
        int64_t first_offset = -1;
    };
    static std::string sanitize_utf8(const std::string& s, Utf8Report* report = nullptr);
    // The once-per-input note on stderr ("tapegrad: note: <what>: N invalid UTF-8
    // sequences replaced by U+FFFD, the first at byte offset K"); nothing when clean.
    static void note_invalid_utf8(const std::string& what, const std::string& raw);
    // Byte offsets (ascending, excluding 0 and size) where `text` may be cut into
    // pieces that pre-tokenise exactly as the whole: before a space that follows
    // an ASCII non-space byte, or after a lone '\n' between ASCII non-space
    // bytes. Pieces are about `target` bytes (longer when no boundary is near).
    static std::vector<size_t> split_points(std::string_view text, size_t target);
    // Entries in the calling thread's word cache (at most kCacheEntries).
    static size_t cached_words();

private:
    // One slot of the pair table: key (a << 16 | b), rank = id of the token a+b.
    struct PairSlot {
        uint32_t key;
        int32_t rank;
    };
    struct StrHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    using StrMap = std::unordered_map<std::string, int32_t, StrHash, std::equal_to<>>;

    // Pre-tokenise valid UTF-8 and append the ids. Returns what went wrong (a byte
    // without a token), empty if nothing: it runs on worker threads, so the caller throws.
    std::string encode_ordinary(std::string_view text, std::vector<int64_t>& out) const;
    bool bpe(std::string_view piece, std::vector<int64_t>& out, std::vector<int32_t>& scratch) const;
    // The calling thread's cache for this tokenizer: stretch bytes -> ids, and
    // the pair memo (kPairMemo recent pair lookups, key << 32 | rank,
    // direct-mapped; random bytes' merges repeat a few hundred pairs, U+FFFD's).
    struct WordCache;
    static WordCache& thread_cache(uint64_t owner);  // owner: serial_ (0 only looks)
    bool merge(std::string_view piece, uint64_t hash, std::vector<int32_t>& ids, WordCache& cache) const;
    bool merge_cached(std::string_view part, uint64_t hash, std::vector<int32_t>& ids,
                      WordCache& cache) const;
    bool is_cut(const unsigned char* s, size_t p) const;
    bool bpe_short(std::string_view piece, std::vector<int32_t>& ids, uint64_t* memo) const;
    bool bpe_long(std::string_view piece, std::vector<int32_t>& ids, uint64_t* memo) const;
    bool bpe_huge(std::string_view piece, std::vector<int32_t>& ids, uint64_t* memo) const;
    template <class Queue>  // bpe_long's and bpe_huge's common part
    bool merge_queued(std::string_view piece, Queue& q, std::vector<int32_t>& ids, uint64_t* memo) const;
    auto first_rank(std::string_view piece) const;                  // bytes i, i+1 -> rank (-1: none)
    int32_t pair_rank(int32_t a, int32_t b) const;                  // id of the token a+b, or -1
    int32_t pair_rank(int32_t a, int32_t b, uint64_t* memo) const;  // the same through the memo
    void build_pairs();
    void fill_pairs(const std::vector<PairSlot>& pairs);  // pairs_ holds exactly these
    // The last merge of BPE of a token's bytes alone (its canonical split), or (-1, -1).
    std::pair<int32_t, int32_t> last_merge(std::string_view bytes) const;
    std::vector<int64_t> encode_valid(const std::string& text, bool allow_special, bool parallel) const;

    std::vector<std::string> id_to_bytes_;
    StrMap bytes_to_id_;
    int32_t byte_id_[256];  // -1: the byte is not a token
    // The rank of merging two bytes, indexed by (first << 8 | second): the first
    // round of every merge, from a 128 KB table that stays in L2 (kNoPair16: none).
    std::vector<uint16_t> byte_pair_;
    std::vector<PairSlot, detail::HugePages<PairSlot>>
        pairs_;            // open addressing, linear probing, at most half full
    int pair_shift_ = 64;  // slot of a key: (key * golden) >> pair_shift_
    // Token bytes -> id for the hot path, flat like pairs_: (hash of the bytes, id; -1 empty).
    struct TokenSlot {
        uint64_t hash;
        int32_t id;
    };
    std::vector<TokenSlot, detail::HugePages<TokenSlot>> tokens_;
    std::vector<uint64_t> inner3_;  // is_cut: 2^24 bits, three bytes occur inside a token
    // A Bloom filter over the pairs that merge (2^20 bits, 128 KB, two bits a
    // pair in one word): most pairs a merge asks about merge into nothing
    // (letters: 78% of the memo's misses), and a clear bit says so from L2.
    std::vector<uint64_t> pair_bloom_;
    // 2^20 bits, bit (hash mod 2^20) set for every token's hash. A clear bit
    // proves a pre-token is no token without touching the 2 MB table; ~5% of
    // the strings that are no token find their bit set (50K tokens in 1M bits)
    // and go on to the table.
    std::vector<uint64_t> token_bloom_;
    int token_shift_ = 64;
    int32_t token_id(std::string_view bytes, uint64_t hash) const;  // -1: not a token
    PreTokenizer pre_;
    uint64_t serial_;  // tells the per-thread caches which tokenizer filled them
};

}  // namespace tg::train
