// GPT-2's byte-level BPE, matching tiktoken's `gpt2` encoding token for token.
//
//   text -> (invalid UTF-8 -> U+FFFD) -> pre-tokens by GPT-2's pattern
//        -> each pre-token's bytes merged pairwise by merge rank -> ids
//
// The pre-tokenisation pattern needs Unicode letter and number classes, so it
// runs on PCRE2 (Debian's libpcre2) in UTF + UCP mode:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// encoder.json maps byte-to-unicode-escaped strings to ids; vocab.bpe lists the
// merges by rank after a "#version" line. <|endoftext|> (50256) is a special
// token only when allowed; otherwise it is ordinary text (tiktoken's
// encode_ordinary).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace tg::train {

class Tokenizer {
public:
    static constexpr int64_t kEndOfText = 50256;
    // Throws naming the file and line of any malformed entry.
    Tokenizer(const std::string& encoder_json_path, const std::string& vocab_bpe_path);
    ~Tokenizer();
    Tokenizer(const Tokenizer&) = delete;
    Tokenizer& operator=(const Tokenizer&) = delete;

    std::vector<int64_t> encode(const std::string& text, bool allow_special = false) const;
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

private:
    void encode_ordinary(const std::string& text, std::vector<int64_t>& out) const;
    void bpe(const std::string& piece, std::vector<int64_t>& out) const;

    std::vector<std::string> id_to_bytes_;
    std::unordered_map<std::string, int64_t> bytes_to_id_;
    std::unordered_map<std::string, int> merge_rank_;  // key: merge_key(left, right)
    struct Regex;
    std::unique_ptr<Regex> re_;
    mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

}  // namespace tg::train
