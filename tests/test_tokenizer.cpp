// The tokenizer beyond tiktoken's ordinary strings (those are in test_train.cpp):
// inputs that once took quadratic time, the parallel encoder, several threads
// on one tokenizer, and the bounded word cache.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <thread>

#include "core/blas.h"
#include "test_util.h"
#include "train/data.h"
#include "train/tokenizer.h"

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
}
