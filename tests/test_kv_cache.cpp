// The KV cache (nn/kv_cache.cpp, GPTModel::forward_cached, generate's kv_cache):
// cached logits equal the uncached forward's at every position, prefilled or one
// token at a time, for mha and alt1; greedy text identical to the uncached path,
// also past the context window (the cache restarts from the cropped window);
// misuse is refused.
#include <catch2/catch.hpp>

#include <cmath>

#include "models/generate.h"
#include "test_util.h"

using namespace tg;
using namespace tg::models;

namespace {

GPTConfig tiny(const std::string& attention, bool qkv_bias) {
    GPTConfig c = preset("tiny");
    c.attention = attention;
    c.qkv_bias = qkv_bias;
    return c;
}

std::vector<int64_t> some_ids(int64_t n, int64_t vocab) {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < n; ++i) v.push_back((i * 7919 + 13) % vocab);
    return v;
}

double rel_err(const float* a, const float* b, int64_t n) {
    double d = 0, m = 0;
    for (int64_t i = 0; i < n; ++i) {
        d = std::max(d, std::abs(static_cast<double>(a[i]) - b[i]));
        m = std::max(m, std::abs(static_cast<double>(b[i])));
    }
    return d / m;
}

}  // namespace

TEST_CASE("KV cache: cached logits equal the full forward's at every position", "[kv_cache]") {
    for (const char* att : {"mha", "alt1"})
        for (bool bias : {false, true}) {
            INFO(att << " qkv_bias " << bias);
            manual_seed(3);
            GPTModel m(tiny(att, bias));
            m.eval();
            NoGradGuard ng;
            int64_t T = 40, V = m.config().vocab_size;
            auto ids = some_ids(T, V);
            Tensor full = m.forward(Ids{{1, T}, ids});  // [1, T, V]
            KVCache cache;
            // a 5-token prefill, then one token at a time
            Tensor first = m.forward_cached(Ids{{1, 5}, {ids.begin(), ids.begin() + 5}}, cache);
            CHECK(first.shape() == Shape{1, 1, V});
            CHECK(rel_err(first.data(), full.data() + 4 * V, V) <= 1e-5);
            for (int64_t t = 5; t < T; ++t) {
                Tensor step = m.forward_cached(Ids{{1, 1}, {ids[t]}}, cache);
                INFO("position " << t);
                CHECK(rel_err(step.data(), full.data() + t * V, V) <= 1e-5);
            }
            CHECK(cache.len() == T);
        }
}

TEST_CASE("KV cache: greedy text identical to the uncached path, past the context window too",
          "[kv_cache][generate]") {
    for (const char* att : {"mha", "alt1"}) {
        INFO(att);
        manual_seed(11);
        GPTModel m(tiny(att, false));
        auto prompt = some_ids(20, m.config().vocab_size);
        // 20 + 100 tokens > context 64: from step 45 on every step restarts the cache
        auto plain = generate(m, prompt, {.max_new_tokens = 100});
        auto cached = generate(m, prompt, {.max_new_tokens = 100, .kv_cache = true});
        CHECK(cached.size() == 120);
        CHECK(cached == plain);
        // sampling draws the same numbers in the same order
        Generator g1(5), g2(5);
        CHECK(generate(m, prompt, {.max_new_tokens = 30, .temperature = 1.0f, .top_k = 20, .kv_cache = true},
                       g1) ==
              generate(m, prompt, {.max_new_tokens = 30, .temperature = 1.0f, .top_k = 20}, g2));
        CHECK(m.is_training());
    }
}

TEST_CASE("KV cache: each new token reaches on_token as it comes, and eos stops", "[kv_cache][generate]") {
    manual_seed(11);
    GPTModel m(tiny("mha", false));
    auto prompt = some_ids(5, m.config().vocab_size);
    std::vector<int64_t> seen;
    auto out =
        generate(m, prompt,
                 {.max_new_tokens = 8, .kv_cache = true, .on_token = [&](int64_t t) { seen.push_back(t); }});
    CHECK(seen == std::vector<int64_t>(out.begin() + 5, out.end()));
    auto stopped = generate(m, prompt, {.max_new_tokens = 8, .eos_id = out[7], .kv_cache = true});
    CHECK(stopped == std::vector<int64_t>(out.begin(), out.begin() + 7));
}

TEST_CASE("KV cache: misuse is refused with the reason", "[kv_cache][errors]") {
    manual_seed(1);
    GPTModel m(tiny("mha", false));
    KVCache cache;
    {
        NoGradGuard ng;
        REQUIRE_THROWS_WITH(m.forward_cached(Ids{{1, 3}, {1, 2, 3}}, cache), Catch::Contains("eval mode"));
        m.eval();
        REQUIRE_THROWS_WITH(m.forward_cached(Ids{{2, 1}, {1, 2}}, cache), Catch::Contains("[1, t]"));
        REQUIRE_THROWS_WITH(m.forward_cached(Ids{{1, 65}, some_ids(65, 100)}, cache),
                            Catch::Contains("exceed context_length 64"));
    }
    REQUIRE_THROWS_WITH(m.forward_cached(Ids{{1, 3}, {1, 2, 3}}, cache), Catch::Contains("NoGradGuard"));
}
