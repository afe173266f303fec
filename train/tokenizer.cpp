#include "train/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fmt/format.h>
#include <pcre2.h>

#include <climits>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

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

std::string merge_key(const std::string& a, const std::string& b) {
    std::string k;
    k.reserve(a.size() + b.size() + 4);
    uint32_t n = static_cast<uint32_t>(a.size());
    k.append(reinterpret_cast<const char*>(&n), 4);  // length-prefixed: bytes may be anything
    return k + a + b;
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
        if (tok != "<|endoftext|>") bytes_to_id_[bytes] = i;
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
        if (!bytes_to_id_.count(a + b))
            throw Error(fmt::format("tapegrad: tokenizer: {}:{}: merge result of '{}' is not in {}", bpe_path,
                                    lineno, line, enc_path));
        merge_rank_.emplace(merge_key(a, b), rank++);
    }
    if (rank == 0) throw Error("tapegrad: tokenizer: " + bpe_path + ": no merges found");

    int err = 0;
    PCRE2_SIZE off = 0;
    re_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    if (!re_->code) throw Error("tapegrad: tokenizer: PCRE2 rejected the GPT-2 pattern");
}

Tokenizer::~Tokenizer() = default;

// Merge the lowest-ranked adjacent pair until none is in the merge table.
void Tokenizer::bpe(const std::string& piece, std::vector<int64_t>& out) const {
    if (auto it = bytes_to_id_.find(piece); it != bytes_to_id_.end()) {
        out.push_back(it->second);
        return;
    }
    if (auto c = cache_.find(piece); c != cache_.end()) {
        out.insert(out.end(), c->second.begin(), c->second.end());
        return;
    }
    std::vector<std::string> parts;
    for (char ch : piece) parts.emplace_back(1, ch);
    while (parts.size() > 1) {
        int best = INT_MAX;
        size_t at = 0;
        for (size_t i = 0; i + 1 < parts.size(); ++i) {
            auto it = merge_rank_.find(merge_key(parts[i], parts[i + 1]));
            if (it != merge_rank_.end() && it->second < best) {
                best = it->second;
                at = i;
            }
        }
        if (best == INT_MAX) break;
        parts[at] += parts[at + 1];
        parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(at) + 1);
    }
    std::vector<int64_t> ids;
    for (auto& p : parts) ids.push_back(bytes_to_id_.at(p));
    cache_[piece] = ids;
    out.insert(out.end(), ids.begin(), ids.end());
}

void Tokenizer::encode_ordinary(const std::string& text, std::vector<int64_t>& out) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(re_->code, nullptr);
    auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t pos = 0;
    while (pos < text.size()) {
        int rc = pcre2_match(re_->code, subject, text.size(), pos, 0, md, nullptr);
        if (rc < 0) break;  // every byte matches one alternative; no match means the end
        PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) break;
        bpe(text.substr(ov[0], ov[1] - ov[0]), out);
        pos = ov[1];
    }
    pcre2_match_data_free(md);
}

std::vector<int64_t> Tokenizer::encode(const std::string& raw, bool allow_special) const {
    std::string text = sanitize_utf8(raw);
    std::vector<int64_t> out;
    if (!allow_special) {
        encode_ordinary(text, out);
        return out;
    }
    static const std::string eot = "<|endoftext|>";
    size_t start = 0;
    while (true) {
        size_t hit = text.find(eot, start);
        encode_ordinary(text.substr(start, hit == std::string::npos ? std::string::npos : hit - start), out);
        if (hit == std::string::npos) break;
        out.push_back(kEndOfText);
        start = hit + eot.size();
    }
    return out;
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
