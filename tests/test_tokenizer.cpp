// The tokenizer beyond tiktoken's ordinary strings (those are in test_train.cpp):
// inputs that once took quadratic time, the parallel encoder, several threads
// on one tokenizer, and the bounded word cache.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <thread>
#include <unordered_map>

#include "core/blas.h"
#include "test_util.h"
#include "train/data/text_loader.h"
#include "train/tokenizer/tokenizer.h"

using namespace tg;
using namespace tg::train;
using json = nlohmann::json;

namespace {

const Tokenizer& gpt2() {
    static Tokenizer t(test::source_path("data/encoder.json"), test::source_path("data/vocab.bpe"));
    return t;
}

std::string verdict() { return read_text_file(test::source_path("data/the-verdict.txt")); }

// The inputs of tools/make_tokenizer_adversarial_fixture.mjs, byte for byte.
std::string adversarial_input(const std::string& name) {
    auto keep = [](auto pred, size_t n) {
        std::string out;
        for (char c : verdict())
            if (out.size() < n && pred(static_cast<unsigned char>(c))) out.push_back(c);
        return out;
    };
    auto is_space = [](unsigned char b) { return b == ' ' || b == '\n' || b == '\r' || b == '\t'; };
    auto is_letter = [](unsigned char b) { return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z'); };
    if (name == "random_bytes") {
        std::string out(1 << 18, '\0');
        uint32_t x = 1;
        for (char& c : out) {
            x = x * 1664525u + 1013904223u;
            c = static_cast<char>(x >> 24);
        }
        return out;
    }
    if (name == "one_char_run") return std::string(1 << 14, 'a');
    if (name == "space_run") return std::string(1 << 14, ' ') + "x";
    if (name == "no_space_line") return keep([&](unsigned char b) { return !is_space(b); }, 1 << 14);
    if (name == "letters_only") return keep(is_letter, 1 << 14);
    FAIL("unknown case " << name);
    return {};
}

// An independent reference: GPT-2 BPE by its definition, straight from
// encoder.json (token strings in GPT-2's byte-to-unicode alphabet). Merge the
// adjacent pair whose concatenation is the token of lowest id, leftmost on
// ties, until none is a token; O(n^2) string work, for pieces of a few hundred
// bytes. It shares nothing with the tokenizer's tables, cuts or heaps.
struct ReferenceBpe {
    std::unordered_map<std::string, int64_t> id;
    ReferenceBpe() {
        std::map<uint32_t, unsigned char> cp_to_byte;  // the printable bytes map to themselves
        uint32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            bool direct = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            cp_to_byte[direct ? static_cast<uint32_t>(b) : next++] = static_cast<unsigned char>(b);
        }
        std::ifstream f(test::source_path("data/encoder.json"));
        json enc = json::parse(f);
        for (auto& [tok, v] : enc.items()) {
            std::string bytes;
            for (size_t i = 0; i < tok.size();) {  // decode UTF-8, map each code point to its byte
                auto c = static_cast<unsigned char>(tok[i]);
                int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : 3;
                uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : c & 0x0F;
                for (int k = 1; k < len; ++k) cp = cp << 6 | (static_cast<unsigned char>(tok[i + k]) & 0x3F);
                bytes.push_back(static_cast<char>(cp_to_byte.at(cp)));
                i += static_cast<size_t>(len);
            }
            id[bytes] = v.get<int64_t>();
        }
    }
    // One pre-token (tiktoken: a piece that is a token is that token).
    std::vector<int64_t> encode_piece(const std::string& piece) const {
        if (auto it = id.find(piece); it != id.end()) return {it->second};
        std::vector<std::string> parts;
        for (char c : piece) parts.emplace_back(1, c);
        for (;;) {
            int64_t best = -1;
            size_t at = 0;
            for (size_t i = 0; i + 1 < parts.size(); ++i) {
                auto it = id.find(parts[i] + parts[i + 1]);
                if (it != id.end() && (best < 0 || it->second < best)) {
                    best = it->second;
                    at = i;
                }
            }
            if (best < 0) break;
            parts[at] += parts[at + 1];
            parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(at) + 1);
        }
        std::vector<int64_t> out;
        for (auto& p : parts) out.push_back(id.at(p));
        return out;
    }
};

uint32_t fnv1a32(const std::vector<int64_t>& ids) {
    uint32_t h = 0x811C9DC5u;
    for (int64_t id : ids)
        for (int k = 0; k < 4; ++k) h = (h ^ ((static_cast<uint32_t>(id) >> (8 * k)) & 0xFF)) * 0x01000193u;
    return h;
}

}  // namespace

TEST_CASE("adversarial inputs complete with tiktoken's ids", "[tokenizer][adversarial]") {
    std::ifstream f(test::source_path("tests/fixtures/tokenizer_adversarial.json"));
    REQUIRE(f.good());
    json fx = json::parse(f);
    REQUIRE(fx.size() == 5);
    for (auto& [name, c] : fx.items()) {
        INFO(name);
        std::string in = adversarial_input(name);
        REQUIRE(in.size() == c.at("bytes").get<size_t>());
        for (bool parallel : {false, true}) {
            INFO("parallel " << parallel);
            std::vector<int64_t> ids = parallel ? gpt2().encode_parallel(in) : gpt2().encode(in);
            REQUIRE(ids.size() == c.at("count").get<size_t>());
            CHECK(fnv1a32(ids) == c.at("fnv1a32").get<uint32_t>());
            std::vector<int64_t> head(ids.begin(), ids.begin() + 32), tail(ids.end() - 32, ids.end());
            CHECK(head == c.at("head").get<std::vector<int64_t>>());
            CHECK(tail == c.at("tail").get<std::vector<int64_t>>());
        }
    }
}

// Single pre-tokens (letters only, or one repeated letter) of every length
// around the merge paths' thresholds: the short scan, the cut into stretches
// no merge crosses (past kWholePiece), the heap (stretches past kShortPiece);
// each against the reference. (The per-rank heaps
// of pieces over kHugePiece are checked against tiktoken above: 16K of 'a'.)
TEST_CASE("long pre-tokens merge as the reference BPE does", "[tokenizer][adversarial]") {
    static const ReferenceBpe ref;
    std::string letters;
    for (char c : verdict())
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) letters.push_back(c);
    std::vector<std::string> pieces;
    const size_t w = Tokenizer::kWholePiece, k = Tokenizer::kShortPiece;
    // n bytes have n - 1 pair keys, scanned one at a time up to eight and
    // sixteen lanes at a time beyond: 9 is the longest scalar scan, 10 the
    // shortest vector one, 17 fills one lane group exactly, 18 starts a second,
    // 33 fills two and 34 starts a third.
    for (size_t n :
         {size_t{1},  size_t{2},  size_t{7},  size_t{9},  size_t{10},  size_t{17}, size_t{18}, size_t{31},
          size_t{33}, size_t{34}, size_t{63}, size_t{64}, w - 1,       w,          w + 1,      size_t{300},
          k - 1,      k,          k + 1,      k + 2,      size_t{700}, 2 * k + 1}) {
        REQUIRE(letters.size() >= n * 14);
        pieces.push_back(letters.substr(n * 13, n));
        pieces.push_back(std::string(n, 'a'));
        pieces.push_back(std::string(n, 'x'));
    }
    // Twice: the second time the stretches come from the word cache.
    for (int pass : {1, 2})
        for (const auto& p : pieces) {
            INFO("pass " << pass << ", piece of " << p.size() << " bytes: " << p.substr(0, 40));
            CHECK(gpt2().encode(p) == ref.encode_piece(p));
        }
}

// The pair table keeps each token's canonical split only (the last merge of
// BPE of its own bytes), on the argument that no other split is ever merged.
// Against the reference, which merges any two parts whose concatenation is a
// token: pre-tokens of random letters and of random punctuation, whose merges
// are nothing like English's (bpe_short), and of 513 to ~1,100 random letters
// from "aerst", where every two letters are a token and no cut falls, so the
// whole piece merges through the heap (bpe_long).
TEST_CASE("BPE through canonical splits only merges as the reference does", "[tokenizer]") {
    static const ReferenceBpe ref;
    const std::string letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const std::string punct = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~";  // no ': it starts 's, 't, ...
    uint32_t x = 7;
    auto next = [&](size_t n) {
        x = x * 1664525u + 1013904223u;
        return static_cast<size_t>(x >> 8) % n;
    };
    int checked = 0;
    for (const std::string& alphabet : {letters, punct})
        for (int i = 0; i < 1500; ++i) {
            std::string p(2 + next(60), ' ');
            for (char& c : p) c = alphabet[next(alphabet.size())];
            INFO("piece " << p);
            REQUIRE(gpt2().encode(p) == ref.encode_piece(p));
            ++checked;
        }
    for (int i = 0; i < 8; ++i) {
        std::string p(Tokenizer::kShortPiece + 1 + next(600), ' ');
        for (char& c : p) c = "aerst"[next(5)];
        INFO("piece of " << p.size() << " bytes: " << p.substr(0, 40));
        REQUIRE(gpt2().encode(p) == ref.encode_piece(p));
        ++checked;
    }
    CHECK(checked == 3008);
}

TEST_CASE("split points cut only where pre-tokens meet, so pieces encode as the whole", "[tokenizer]") {
    std::string text =
        verdict() + "\n" + adversarial_input("random_bytes").substr(0, 5000) + "x  y\n\nz 'tis";
    std::string clean = Tokenizer::sanitize_utf8(text);
    std::vector<int64_t> whole = gpt2().encode(clean);
    for (size_t target : {1, 7, 100, 4096}) {
        INFO("target " << target);
        std::vector<size_t> cuts = Tokenizer::split_points(clean, target);
        REQUIRE(!cuts.empty());
        std::vector<int64_t> joined;
        size_t start = 0;
        cuts.push_back(clean.size());
        for (size_t cut : cuts) {
            REQUIRE(cut > start);
            auto part = gpt2().encode(clean.substr(start, cut - start));
            joined.insert(joined.end(), part.begin(), part.end());
            start = cut;
        }
        CHECK(joined == whole);
    }
    // With specials allowed the parallel encoder still equals the serial one.
    std::string with_eot = verdict() + "<|endoftext|>" + verdict();
    set_num_threads(2);
    CHECK(gpt2().encode_parallel(with_eot, true) == gpt2().encode(with_eot, true));
}

TEST_CASE("several threads encode with one tokenizer and get the serial ids", "[tokenizer][threads]") {
    std::vector<std::string> texts = {verdict(), adversarial_input("random_bytes").substr(0, 60000),
                                      adversarial_input("no_space_line"), verdict().substr(1000, 9000)};
    std::vector<std::vector<int64_t>> want;
    for (auto& t : texts) want.push_back(gpt2().encode(t));
    std::vector<std::vector<int64_t>> got(8);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < got.size(); ++i)
        threads.emplace_back([&, i] { got[i] = gpt2().encode(texts[i % texts.size()]); });
    for (auto& th : threads) th.join();
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == want[i % texts.size()]);
}

TEST_CASE("the word cache stays bounded", "[tokenizer]") {
    Tokenizer tok(test::source_path("data/encoder.json"), test::source_path("data/vocab.bpe"));
    // 60,000 random 7-letter words: nearly all distinct and not single tokens, so
    // an unbounded cache would end with ~60,000 entries.
    std::string in;
    uint32_t x = 7;
    for (int w = 0; w < 60000; ++w) {
        in += ' ';
        for (int k = 0; k < 7; ++k) {
            x = x * 1664525u + 1013904223u;
            in += static_cast<char>('a' + (x >> 24) % 26);
        }
    }
    std::vector<int64_t> ids = tok.encode(in);
    CHECK(ids.size() > 120000);
    CHECK(Tokenizer::cached_words() > 0);
    CHECK(Tokenizer::cached_words() <= Tokenizer::kCacheEntries);

    // Two tokenizers taking turns on one thread: each turn starts the thread's
    // cache and pair memo afresh, and the ids stay the same.
    const std::string text = verdict().substr(0, 4000) + adversarial_input("random_bytes").substr(0, 4000);
    const std::vector<int64_t> want = gpt2().encode(text);
    for (int turn = 0; turn < 3; ++turn) {
        INFO("turn " << turn);
        CHECK(tok.encode(text) == want);
        CHECK(gpt2().encode(text) == want);
    }
}
