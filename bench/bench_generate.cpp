// Generation speed: batch-1 greedy decoding of GPT-2 124M's shape (gpt2-small-hf:
// context 1024, qkv_bias), 200 new tokens after a 20-token prompt, with and
// without the KV cache, against PyTorch 1.13 in the same run
// (tools/torch_generate_bench.py: the book's generate_text_simple, and a cached
// version after the book's KV-cache bonus material).
//
// The bound: a decoding step multiplies one row by every weight matrix, so it
// reads every parameter once (the embeddings only one row each): bytes/token =
// 4 x (parameters - tok_emb - pos_emb). At the machine's read bandwidth (measured
// here, 2 threads over 1 GiB) that caps tokens/s for any implementation; the
// cached KV rows add 2 x layers x C x 4 bytes per past token (<= 8 MB at 220).
// Both models are seeded alike (torch.manual_seed(123)), so their weights and
// greedy tokens are the same and the tokens are compared too.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <vector>

#include "bench/bench.h"
#include "core/blas.h"
#include "core/parallel.h"
#include "models/generate.h"

namespace tg::bench {
namespace {

double seconds(const std::function<void()>& f) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Read bandwidth (GB/s) of a parallel pass over 1 GiB, and memcpy's (bytes read
// + written per second), best of reps.
std::pair<double, double> bandwidth(int reps) {
    size_t n = size_t{1} << 27;  // 2^27 uint64 = 1 GiB
    std::vector<uint64_t> a(n, 1), b(n, 0);
    volatile uint64_t sink = 0;
    double read = best_of(reps, [&] {
        int64_t chunks = max_threads();
        std::vector<uint64_t> part(static_cast<size_t>(chunks), 0);
        parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
            for (int64_t c = c0; c < c1; ++c) {
                uint64_t x = 0;
                for (size_t i = n * c / chunks; i < n * (c + 1) / chunks; ++i) x ^= a[i];
                part[static_cast<size_t>(c)] = x;
            }
        });
        for (uint64_t x : part) sink = sink ^ x;
    });
    double copy = best_of(reps, [&] { std::memcpy(b.data(), a.data(), n * 8); });
    return {8.0 * n / read * 1e-9, 2.0 * 8.0 * n / copy * 1e-9};
}

// "uncached_tok_s cached_tok_s identical" then the greedy tokens, from PyTorch.
bool torch_generate(double& uncached, double& cached, bool& same, std::vector<int64_t>& tokens) {
    if (access("/usr/bin/python3", X_OK) != 0) return false;
    std::string cmd =
        fmt::format("/usr/bin/python3 {}/tools/torch_generate_bench.py 2>/dev/null", TAPEGRAD_SOURCE_DIR);
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return false;
    int s = 0;
    bool ok = std::fscanf(p, "%lf %lf %d", &uncached, &cached, &s) == 3;
    same = s == 1;
    long long t;
    while (ok && std::fscanf(p, "%lld", &t) == 1) tokens.push_back(t);
    return pclose(p) == 0 && ok;
}

}  // namespace

void run_generate(const Options& opt) {
    const int64_t prompt_len = 20, new_tokens = 200;
    auto [read_bw, copy_bw] = bandwidth(opt.reps);
    fmt::print("\ngeneration, gpt2-small-hf (124M shape, context 1024), batch 1, {} prompt + {} new tokens, "
               "greedy, {} "
               "BLAS threads\n",
               prompt_len, new_tokens, num_threads());
    fmt::print(
        "memory bandwidth: read {:.1f} GB/s (2 threads over 1 GiB), memcpy {:.1f} GB/s (read + write)\n",
        read_bw, copy_bw);
    manual_seed(123);
    models::GPTModel model(models::preset("gpt2-small-hf"));
    double bytes = 4.0 * static_cast<double>(model.num_parameters() - model.tok_emb->weight.numel() -
                                             model.pos_emb->weight.numel());
    double bound = read_bw * 1e9 / bytes;
    fmt::print("weights read per token {:.0f} MB -> bound {:.1f} tokens/s at the read bandwidth\n",
               bytes / 1e6, bound);
    std::vector<int64_t> prompt;
    for (int64_t i = 0; i < prompt_len; ++i) prompt.push_back(i * 7919 % model.config().vocab_size);
    models::generate(model, prompt, {.max_new_tokens = 3, .kv_cache = true});  // warm the buffer pool
    models::generate(model, prompt, {.max_new_tokens = 3});
    std::vector<int64_t> plain, cached;
    double t_plain =
        seconds([&] { plain = models::generate(model, prompt, {.max_new_tokens = new_tokens}); });
    double t_cached = seconds(
        [&] { cached = models::generate(model, prompt, {.max_new_tokens = new_tokens, .kv_cache = true}); });
    double r_plain = new_tokens / t_plain, r_cached = new_tokens / t_cached;
    fmt::print("{:<28} {:>10} {:>10}\n", "", "tokens/s", "x bound");
    fmt::print("{:<28} {:>10.2f} {:>10.3f}\n", "tapegrad uncached", r_plain, r_plain / bound);
    fmt::print("{:<28} {:>10.2f} {:>10.3f}\n", "tapegrad KV cache", r_cached, r_cached / bound);
    fmt::print("cached tokens == uncached tokens: {}\n", cached == plain ? "yes" : "NO");
    if (!opt.torch) return;
    double tu = 0, tc = 0;
    bool same = false;
    std::vector<int64_t> torch_tokens;
    if (!torch_generate(tu, tc, same, torch_tokens)) {
        fmt::print("PyTorch: skipped (python3-torch not installed or the script failed)\n");
        return;
    }
    std::vector<int64_t> ours(plain.begin() + prompt_len, plain.end());
    fmt::print("{:<28} {:>10.2f} {:>10.3f}\n", "PyTorch uncached (book)", tu, tu / bound);
    fmt::print("{:<28} {:>10.2f} {:>10.3f}\n", "PyTorch KV cache", tc, tc / bound);
    fmt::print("PyTorch cached == uncached: {}; tapegrad's tokens == PyTorch's: {}\n", same ? "yes" : "NO",
               torch_tokens == ours ? "yes" : "NO");
    fmt::print("tapegrad KV cache / PyTorch uncached {:.2f}x, / PyTorch KV cache {:.2f}x\n", r_cached / tu,
               r_cached / tc);
}

}  // namespace tg::bench
