// Core benchmark: matmul forward + backward through tapegrad against raw
// cblas_sgemm on the same GPT-124M shapes, and bandwidth of the fused kernels.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "bench/bench.h"
#include "core/blas.h"
#include "core/tapegrad.h"

namespace tg::bench {

namespace {

struct MatShape {
    int64_t M, K, N;
    const char* what;
};

Tensor rand_leaf(const Shape& s, uint64_t seed) {
    Generator g(seed);
    Tensor t = Tensor::empty(s);
    g.fill_uniform(t.data(), t.numel(), -1.0, 1.0);
    return t.requires_grad_();
}

}  // namespace

void run_core(const Options& opt) {
    const std::vector<MatShape> shapes = {{512, 768, 768, "attn proj"},
                                          {512, 768, 2304, "qkv fused"},
                                          {512, 768, 3072, "ff up"},
                                          {512, 3072, 768, "ff down"},
                                          {512, 768, 50257, "out_head"}};
    fmt::print("matmul forward+backward (3 GEMMs), {} BLAS threads, best of {}\n", num_threads(), opt.reps);
    fmt::print("{:<12} {:>20} {:>12} {:>12} {:>8}\n", "shape", "M x K x N", "sgemm GF/s", "tapegrad GF/s",
               "ratio");
    for (const MatShape& s : shapes) {
        Tensor x = rand_leaf({s.M, s.K}, 1), w = rand_leaf({s.K, s.N}, 2);
        Tensor gy = Tensor::empty({s.M, s.N});
        std::fill_n(gy.data(), gy.numel(), 1e-3f);
        Tensor y = Tensor::empty({s.M, s.N}), gx = Tensor::empty({s.M, s.K}), gw = Tensor::empty({s.K, s.N});
        double flops = 3.0 * 2.0 * static_cast<double>(s.M) * s.K * s.N;
        double raw = best_of(opt.reps, [&] {
            gemm(false, false, s.M, s.N, s.K, 1.f, x.data(), s.K, w.data(), s.N, 0.f, y.data(), s.N);
            gemm(false, true, s.M, s.K, s.N, 1.f, gy.data(), s.N, w.data(), s.N, 0.f, gx.data(), s.K);
            gemm(true, false, s.K, s.N, s.M, 1.f, x.data(), s.K, gy.data(), s.N, 0.f, gw.data(), s.N);
        });
        double ours = best_of(opt.reps, [&] {
            x.zero_grad();
            w.zero_grad();
            Tensor out = matmul(x, w);
            out.backward(gy);
        });
        fmt::print("{:<12} {:>20} {:>12.1f} {:>12.1f} {:>8.3f}\n", s.what,
                   fmt::format("{}x{}x{}", s.M, s.K, s.N), flops / raw * 1e-9, flops / ours * 1e-9,
                   ours / raw);
    }

    {  // the machine's sgemm ceiling: one large square product
        const int64_t n = 2048;
        Tensor a = rand_leaf({n, n}, 3), b = rand_leaf({n, n}, 4), c = Tensor::empty({n, n});
        double t = best_of(
            opt.reps, [&] { gemm(false, false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n); });
        fmt::print("{:<12} {:>20} {:>12.1f}   (the machine's sgemm ceiling)\n", "square", "2048x2048x2048",
                   2.0 * n * n * n / t * 1e-9);
    }

    fmt::print("\nfused kernels, forward + backward, GB/s of tensors read and written (best of {})\n",
               opt.reps);
    fmt::print("{:<28} {:>10} {:>10}\n", "kernel", "ms", "GB/s");
    auto report = [&](const char* name, double bytes, double s) {
        fmt::print("{:<28} {:>10.3f} {:>10.2f}\n", name, s * 1e3, bytes / s * 1e-9);
    };
    {
        Tensor a = rand_leaf({512, 3072}, 3), b = rand_leaf({512, 3072}, 4);
        double n = 512.0 * 3072;
        report("add [512,3072]", n * 4 * 5, best_of(opt.reps, [&] {
                   a.zero_grad();
                   b.zero_grad();
                   sum(add(a, b)).backward();
               }));
        report("gelu [512,3072]", n * 4 * 5, best_of(opt.reps, [&] {
                   a.zero_grad();
                   sum(gelu(a)).backward();
               }));
    }
    {
        Tensor s = rand_leaf({2, 12, 256, 256}, 5);
        double n = 2.0 * 12 * 256 * 256;
        report("softmax [2,12,256,256]", n * 4 * 5, best_of(opt.reps, [&] {
                   s.zero_grad();
                   sum(softmax(s)).backward();
               }));
    }
    {
        Tensor x = rand_leaf({512, 768}, 6), sc = rand_leaf({768}, 7), sh = rand_leaf({768}, 8);
        double n = 512.0 * 768;
        report("layer_norm [512,768]", n * 4 * 6, best_of(opt.reps, [&] {
                   x.zero_grad();
                   sum(layer_norm(x, sc, sh)).backward();
               }));
    }
    {
        Tensor logits = rand_leaf({512, 50257}, 9);
        Ids t{{512}, std::vector<int64_t>(512)};
        for (int i = 0; i < 512; ++i) t.data[i] = (i * 7919) % 50257;
        double n = 512.0 * 50257;
        report("cross_entropy [512,50257]", n * 4 * 3, best_of(opt.reps, [&] {
                   logits.zero_grad();
                   cross_entropy(logits, t).backward();
               }));
    }
}

}  // namespace tg::bench
