// The hand-written pre-tokenizer against GPT-2's pattern run by PCRE2 (the
// implementation it replaced, kept as PreTokenizer::reference_ends): every
// code point of every plane next to letters, numbers, spaces, apostrophes and
// itself; texts drawn from the characters where the pattern's alternatives
// meet; and random bytes. A wrong rule (the space before a word, the last
// space of a run, a contraction) changes the ends, and the tests name the
// first byte where they differ.
#include <catch2/catch.hpp>

#include <cstdio>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "train/tokenizer/pretokenizer.h"
#include "train/tokenizer/tokenizer.h"

using namespace tg::train;

namespace {

const PreTokenizer& pre() {
    static PreTokenizer p;
    return p;
}

std::string utf8(uint32_t cp) {
    std::string s;
    if (cp < 0x80) {
        s += static_cast<char>(cp);
    } else if (cp < 0x800) {
        s += static_cast<char>(0xC0 | cp >> 6);
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        s += static_cast<char>(0xE0 | cp >> 12);
        s += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        s += static_cast<char>(0xF0 | cp >> 18);
        s += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
        s += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
}

std::vector<size_t> ends(std::string_view text) {
    std::vector<size_t> out;
    for (size_t p = 0; p < text.size();) {
        size_t e = pre().end_of(text, p);
        if (e <= p || e > text.size()) FAIL("end_of(" << p << ") = " << e << " in a text of " << text.size());
        out.push_back(e);
        p = e;
    }
    return out;
}

// The ends agree, or the first difference is named with the bytes around it.
void check_same_ends(const std::string& text) {
    std::vector<size_t> got = ends(text), want = pre().reference_ends(text);
    size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
    if (i == got.size() && i == want.size()) {
        SUCCEED();
        return;
    }
    size_t at = i == 0 ? 0 : want[i - 1];
    std::string hex;
    for (size_t k = at; k < std::min(text.size(), at + 16); ++k) {
        char b[4];
        std::snprintf(b, sizeof b, "%02x ", static_cast<unsigned char>(text[k]));
        hex += b;
    }
    FAIL("pre-token " << i << " from byte " << at << " (bytes " << hex << "): hand-written end "
                      << (i < got.size() ? std::to_string(got[i]) : "none") << ", PCRE2's "
                      << (i < want.size() ? std::to_string(want[i]) : "none"));
}

bool surrogate(uint32_t cp) { return cp >= 0xD800 && cp <= 0xDFFF; }

}  // namespace

TEST_CASE("every code point splits as GPT-2's pattern under PCRE2", "[tokenizer][pretokenizer]") {
    // Each code point X after and before letters, numbers, ' ', other spaces and
    // an apostrophe, doubled, and after the contractions. One text per plane
    // keeps PCRE2's calls few; a text's end is the next test's.
    for (uint32_t plane = 0; plane <= 0x10; ++plane) {
        std::string text;
        for (uint32_t cp = plane << 16; cp < (plane + 1) << 16; ++cp) {
            if (surrogate(cp) || cp == 0) continue;
            const std::string x = utf8(cp);
            if (plane == 0)
                text += "a" + x + "b " + x + "1\n" + x + x + "  " + x + "'" + x + "'s" + x + "'re" + x +
                        "'ve" + x + "'ll" + x + "\t \n" + x + ". ";
            else
                text += x + x + " " + x + "a" + x + "1  ";
        }
        INFO("plane " << plane);
        check_same_ends(text);
    }
}

TEST_CASE("a space character at a text's end splits as under PCRE2", "[tokenizer][pretokenizer]") {
    // \s+(?!\S) keeps a run of spaces whole at the end of the subject: every
    // space character, alone, after ' ', after a word and doubled, as the last
    // bytes of a text.
    int spaces = 0;
    for (uint32_t cp = 1; cp <= 0x10FFFF; ++cp) {
        if (surrogate(cp) || pre().class_of(cp) != PreTokenizer::kSpace) continue;
        ++spaces;
        const std::string x = utf8(cp);
        INFO("U+" << std::hex << cp);
        for (const std::string& text : {"a" + x, "a" + x + x, " " + x, "a " + x, x + " ", x})
            check_same_ends(text);
    }
    CHECK(spaces >= 20);  // \t..\r, ' ', U+0085, U+00A0, U+1680, U+2000..U+200A, ...
}

TEST_CASE("invalid UTF-8 splits without reading past the text or the class tables",
          "[tokenizer][pretokenizer]") {
    // The tokenizer replaces invalid UTF-8 first; end_of still must stay inside
    // the text and the tables: code points past U+10FFFF, a lead byte cut off
    // by the end, lone continuation bytes.
    for (const std::string text :
         {"\xF7\xBF\xBF\xBF", "\xF4\x90\x80\x80 a", "\xFF\xFF", "ab\xE6\x97", "\x80\x80 x", " \xF0"}) {
        std::vector<size_t> e = ends(text);
        REQUIRE(!e.empty());
        CHECK(e.back() == text.size());
    }
    CHECK(pre().class_of(0x1FFFFF) == PreTokenizer::kOther);
    CHECK(pre().class_of(0x110000) == PreTokenizer::kOther);
}

TEST_CASE("texts from the characters where alternatives meet split as under PCRE2",
          "[tokenizer][pretokenizer]") {
    const std::vector<std::string> parts = {
        "a",
        "Z",
        "é",
        "日本",
        "𝄞",
        "1",
        "٣",
        "Ⅻ",
        "²",
        " ",
        "  ",
        "\t",
        "\n",
        "\r\n",
        "\v",
        "\f",
        "\xC2\xA0",      // no-break space
        "\xC2\x85",      // NEL
        "\xE2\x80\xA8",  // line separator
        "\xE3\x80\x80",  // ideographic space
        "\xE1\xA0\x8E",  // Mongolian vowel separator (its class changed across Unicode versions)
        "\xCC\x81",      // combining acute
        "\xE2\x80\x8D",  // zero-width joiner
        "\xEF\xBF\xBD",  // U+FFFD
        "'",
        "'s",
        "'t",
        "'re",
        "'ve",
        "'m",
        "'ll",
        "'d",
        "'S",
        "'x",
        "''",
        "!",
        "?!",
        "-",
        "_",
        "."};
    uint32_t x = 7;
    for (int t = 0; t < 200; ++t) {
        std::string text;
        const int n = 1 + t % 40;
        for (int k = 0; k < n; ++k) {
            x = x * 1664525u + 1013904223u;
            text += parts[(x >> 8) % parts.size()];
        }
        INFO("text " << t);
        check_same_ends(text);
    }
}

TEST_CASE("random bytes made valid split as under PCRE2", "[tokenizer][pretokenizer]") {
    std::string raw(1 << 16, '\0');
    uint32_t x = 3;
    for (char& c : raw) {
        x = x * 1664525u + 1013904223u;
        c = static_cast<char>(x >> 24);
    }
    check_same_ends(Tokenizer::sanitize_utf8(raw));
}

TEST_CASE("threads racing to classify the same blocks get the same ends",
          "[tokenizer][pretokenizer][threads]") {
    // Fresh blocks (a new PreTokenizer) asked for by four threads released
    // together: the atomic publication under the sanitizers, and the same ends.
    PreTokenizer fresh;
    std::string text;
    for (uint32_t cp = 0x400; cp < 0x3000; cp += 3) text += utf8(cp) + (cp % 5 ? "" : " ");
    std::vector<std::vector<size_t>> got(4);
    std::vector<std::thread> threads;
    std::latch start(static_cast<std::ptrdiff_t>(got.size()));
    for (auto& g : got)
        threads.emplace_back([&] {
            start.arrive_and_wait();
            for (size_t p = 0; p < text.size();) g.push_back(p = fresh.end_of(text, p));
        });
    for (auto& t : threads) t.join();
    std::vector<size_t> want = pre().reference_ends(text);
    for (auto& g : got) CHECK(g == want);
}
