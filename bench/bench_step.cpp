// A full training step of the book's GPT (zero_grad + forward + cross-entropy +
// backward + AdamW), split into forward, backward and optimizer; the eval forward
// (no tape); achieved GFLOP/s; the sgemm bound, i.e. the same step's GEMMs
// (logged from tg::gemm) replayed alone, as tiles and as raw cblas_sgemm calls;
// peak RSS. Each config runs in its own child process so peak RSS is its own.
#include <cblas.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>

#include "bench/bench.h"
#include "core/blas.h"
#include "core/memory.h"
#include "models/gpt.h"
#include "optim/adamw.h"

namespace tg::bench {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double peak_rss_mb() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// Time the logged GEMMs on scratch buffers (inputs warm): through tg::gemm (its
// thread-count-independent tiles, as the step runs them) or, raw, through one
// cblas_sgemm each, threaded by OpenBLAS itself (what the tiles cost).
double sgemm_bound(const std::vector<GemmCall>& calls, double& flops, bool raw = false) {
    size_t need = 0;
    for (auto& c : calls)
        need = std::max<size_t>(need, static_cast<size_t>(std::max({c.M * c.K, c.K * c.N, c.M * c.N})));
    std::vector<float> a(need, 0.01f), b(need, 0.02f), out(need, 0.0f);
    flops = 0;
    for (auto& c : calls) flops += 2.0 * static_cast<double>(c.M) * c.N * c.K;
    auto run = [&] {
        for (auto& c : calls) {
            int lda = static_cast<int>(c.ta ? c.M : c.K), ldb = static_cast<int>(c.tb ? c.K : c.N);
            if (raw)
                cblas_sgemm(CblasRowMajor, c.ta ? CblasTrans : CblasNoTrans, c.tb ? CblasTrans : CblasNoTrans,
                            static_cast<int>(c.M), static_cast<int>(c.N), static_cast<int>(c.K), 1.0f,
                            a.data(), lda, b.data(), ldb, c.beta, out.data(), static_cast<int>(c.N));
            else
                gemm(c.ta, c.tb, c.M, c.N, c.K, 1.0f, a.data(), lda, b.data(), ldb, c.beta, out.data(), c.N);
        }
    };
    return best_of(2, run);
}

struct StepResult {
    double fwd = 0, bwd = 0, opt = 0, step = 0, eval = 0, bound = 0, flops = 0, rss = 0, floor = 0;
    double eval_bound = 0, eval_flops = 0, copy_gbs = 0, params = 0, raw_bound = 0;
    std::vector<double> categories;  // seconds per category_names() entry, one profiled step
};

// Index of the first category time in a child's numbers.
constexpr size_t kCategories = 14;

// The numbers a child prints, in this order (the parent reads them back).
std::vector<double> numbers(const StepResult& r) {
    std::vector<double> v = {r.fwd, r.bwd,   r.opt,        r.step,       r.eval,     r.bound,  r.flops,
                             r.rss, r.floor, r.eval_bound, r.eval_flops, r.copy_gbs, r.params, r.raw_bound};
    v.insert(v.end(), r.categories.begin(), r.categories.end());
    return v;
}
size_t numbers_count() { return kCategories + category_names().size(); }

// step_only: the training step's times alone (the contended row), not the eval,
// the bounds or the profile.
StepResult measure(const models::GPTConfig& cfg, int reps, bool step_only) {
    manual_seed(123);
    models::GPTModel model(cfg);
    std::vector<optim::ParamRef> refs;
    for (auto& [n, t] : model.named_parameters()) refs.push_back({n, t});
    optim::AdamW opt(refs, {.lr = 4e-4, .weight_decay = 0.1});
    int64_t B = 2, T = cfg.context_length;
    Ids ids{{B, T}, std::vector<int64_t>(static_cast<size_t>(B * T))}, tgt = ids;
    for (int64_t i = 0; i < B * T; ++i) {
        ids.data[i] = (i * 7919) % cfg.vocab_size;
        tgt.data[i] = (i * 104729 + 1) % cfg.vocab_size;
    }
    StepResult best;
    best.fwd = best.bwd = best.opt = best.step = best.eval = 1e300;
    // The memory no implementation of this step can avoid: parameters, their
    // gradients and AdamW's two moments, float32.
    for (auto& r : refs) best.floor += 4.0 * 4.0 * static_cast<double>(r.param.numel()) / (1024.0 * 1024.0);
    std::vector<GemmCall> log;
    for (int r = 0; r < reps + 1; ++r) {  // the first step warms the buffer pool
        if (r == 1) set_gemm_log(&log);
        auto t0 = Clock::now();
        opt.zero_grad();
        Tensor loss = cross_entropy(model.forward(ids), tgt);
        double f = since(t0);
        auto t1 = Clock::now();
        loss.backward();
        double b = since(t1);
        set_gemm_log(nullptr);
        auto t2 = Clock::now();
        opt.step();
        double o = since(t2);
        if (r == 0) continue;
        best.fwd = std::min(best.fwd, f);
        best.bwd = std::min(best.bwd, b);
        best.opt = std::min(best.opt, o);
        best.step = std::min(best.step, f + b + o);
    }
    best.rss = peak_rss_mb();  // the training step's peak, before the bound's scratch buffers
    if (step_only) return best;
    best.categories = profile_categories([&] {
        opt.zero_grad();
        cross_entropy(model.forward(ids), tgt).backward();
        opt.step();
    });
    for (auto& r : refs) best.params += static_cast<double>(r.param.numel());
    model.eval();
    auto eval = [&] {
        NoGradGuard ng;
        cross_entropy(model.forward(ids), tgt);
    };
    best.eval = best_of(reps, eval);
    std::vector<GemmCall> eval_log;  // the eval forward's own GEMMs, for its bound
    set_gemm_log(&eval_log);
    eval();
    set_gemm_log(nullptr);
    best.bound = sgemm_bound(log, best.flops);
    double raw_flops = 0;
    best.raw_bound = sgemm_bound(log, raw_flops, true);
    best.eval_bound = sgemm_bound(eval_log, best.eval_flops);
    best.copy_gbs = copy_bandwidth_gbs(reps);
    return best;
}

// Each config runs in a fresh process (this executable with --child) so its peak
// RSS is its own. Not fork(): after the parent has used the OpenMP pool, a forked
// child has no pool threads and libgomp hangs at its first parallel region.
}  // namespace

// env: a prefix for the child's command line (environment variables of the
// contended row, e.g. "env OMP_WAIT_POLICY=passive"). att may carry ":off": that
// child runs with memory saving off (core/memory.h). reps > 0 overrides --reps.
std::vector<double> in_child(const Options& opt, const std::string& preset, const std::string& att,
                             bool step_only, const std::string& env, int reps) {
    std::string cmd = fmt::format("{} {} --reps {} --child {} {}{}", env, opt.self,
                                  reps > 0 ? reps : opt.reps, preset, att, step_only ? " --step-only" : "");
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) throw Error("bench: cannot start " + cmd);
    std::vector<double> v;
    double x;
    while (std::fscanf(p, "%lf", &x) == 1) v.push_back(x);
    if (pclose(p) != 0 || v.size() != (step_only ? 9 : numbers_count()))
        throw Error("bench: child failed: " + cmd);
    return v;
}

namespace {

// tools/torch_bench.py prints "step eval rss" for the same config.
bool torch_numbers(const std::string& preset, const std::string& att, int threads, double& step, double& eval,
                   double& rss) {
    if (access("/usr/bin/python3", X_OK) != 0) return false;
    std::string cmd = fmt::format(
        "/usr/bin/python3 {}/tools/torch_bench.py --preset {} --attention {} --threads {} 2>/dev/null",
        TAPEGRAD_SOURCE_DIR, preset, att, threads);
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return false;
    char buf[512] = {0};
    bool ok = fgets(buf, sizeof buf, p) && std::sscanf(buf, "%lf %lf %lf", &step, &eval, &rss) == 3;
    return pclose(p) == 0 && ok;
}

}  // namespace

// Below a config's row: the eval forward against its own GEMM bound, AdamW's
// bytes against the copy bandwidth, and the non-GEMM time of one profiled step
// by kind (v: the child's numbers, see numbers()).
void print_parts(const std::vector<double>& v) {
    const double eval = v[4], eval_bound = v[9], copy_gbs = v[11], params = v[12], opt = v[2];
    fmt::print("{:<16} eval forward {:.3f} s, its GEMMs' sgemm bound {:.3f} s ({:.1f} GF): {:.2f}x bound\n",
               "", eval, eval_bound, v[10] * 1e-9, eval / eval_bound);
    fmt::print("{:<16} the step's GEMMs in tiles (thread-count independent) {:.3f} s, as raw OpenBLAS calls "
               "(its own threading) {:.3f} s: tiles {:+.1f}%\n",
               "", v[5], v[13], 100 * (v[5] / v[13] - 1));
    double bytes = 28.0 * params;  // read p, g, m, v; write p, m, v (float32)
    fmt::print("{:<16} AdamW: {:.0f} MB moved in {:.3f} s = {:.1f} GB/s; copy bandwidth {:.1f} GB/s -> bound "
               "{:.3f} s, {:.2f}x bound\n",
               "", bytes * 1e-6, opt, bytes / opt * 1e-9, copy_gbs, bytes / (copy_gbs * 1e9),
               opt / (bytes / (copy_gbs * 1e9)));
    std::string parts;
    double non_gemm = opt;
    for (size_t k = 1; k < category_names().size(); ++k) non_gemm += v[kCategories + k];
    parts += fmt::format("AdamW {:.0f}", opt * 1e3);
    for (size_t k = 1; k < category_names().size(); ++k)
        parts += fmt::format(", {} {:.0f}", category_names()[k], v[kCategories + k] * 1e3);
    fmt::print("{:<16} non-GEMM ms of one profiled step: {} (sum {:.0f} ms, {:.0f}% of the step; GEMM ops "
               "{:.0f} ms)\n",
               "", parts, non_gemm * 1e3, 100 * non_gemm / v[3], v[kCategories] * 1e3);
}

void run_step(const Options& opt) {
    struct Cfg {
        const char* preset;
        const char* att;
    };
    std::vector<Cfg> cfgs = {{"gpt2-124m", "mha"}, {"gpt2-124m", "alt1"}, {"tiny", "mha"}, {"tiny", "alt1"}};
    fmt::print(
        "\ntraining step, batch 2 x context, {} threads (BLAS and loops; PyTorch the same), best of {}\n",
        num_threads(), opt.reps);
    fmt::print("{:<16} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>8} {:>9} {:>8} {:>9} {:>8}\n", "config",
               "fwd s", "bwd s", "optim s", "step s", "GF/s", "bound s", "x bound", "eval s", "RSS MB",
               "floor MB", "GF/step");
    for (auto& c : cfgs) {
        models::GPTConfig cfg = models::preset(c.preset);
        cfg.attention = c.att;
        auto v = in_child(opt, c.preset, c.att, false, "");
        std::string name = fmt::format("{} {}", c.preset, c.att);
        fmt::print("{:<16} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f} {:>7.1f} {:>9.3f} {:>8.2f} {:>9.3f} {:>8.0f} "
                   "{:>9.0f} {:>8.1f}\n",
                   name, v[0], v[1], v[2], v[3], v[6] / v[3] * 1e-9, v[5], v[3] / v[5], v[4], v[7], v[8],
                   v[6] * 1e-9);
        print_parts(v);
        // Peak RSS with memory saving off too (one timed step: only its memory is read).
        auto off = in_child(opt, c.preset, std::string(c.att) + ":off", true, "", 1);
        fmt::print("{:<16} peak RSS: floor {:.0f} MB + {:.0f} above it (memory saving on); off: + {:.0f} -> "
                   "above-floor on/off {:.2f}x\n",
                   "", v[8], v[7] - v[8], off[7] - off[8], (v[7] - v[8]) / (off[7] - off[8]));
        if (opt.torch) {
            double ts, te, tr;
            if (torch_numbers(c.preset, c.att, num_threads(), ts, te, tr))
                fmt::print(
                    "{:<16} PyTorch: step {:.3f} s, eval {:.3f} s, RSS {:.0f} MB ({:.0f} above the floor) -> "
                    "tapegrad/PyTorch: step {:.2f}x, eval {:.2f}x, RSS {:.2f}x\n",
                    "", ts, te, tr, tr - v[8], v[3] / ts, v[4] / te, v[7] / tr);
            else
                fmt::print(
                    "{:<16} PyTorch: skipped (python3-torch not installed; apt-get install python3-torch)\n",
                    "");
        }
    }
}

int run_step_child(const Options& opt) {
    std::string preset = opt.child.substr(0, opt.child.find(' ')),
                att = opt.child.substr(opt.child.find(' ') + 1);
    models::GPTConfig cfg = models::preset(preset);
    cfg.attention = att.substr(0, att.find(':'));
    set_memory_saving(att.find(":off") == std::string::npos);
    StepResult r = measure(cfg, opt.reps, opt.step_only);
    std::vector<double> v = numbers(r);
    if (opt.step_only) v.resize(9);
    for (double x : v) fmt::print("{:.9g} ", x);
    fmt::print("\n");
    return 0;
}

}  // namespace tg::bench
