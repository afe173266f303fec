// The data-parallel row (`--only dp`): one training step of GPT_CONFIG_124M on
// the book's global batch (2 x 256 tokens), as
//   1 process  x 2 threads  (the plain step), and
//   mpirun -np 2 x 1 thread (each rank one row; gradients averaged in 25 MB
//                            buckets started during backward, train/dist/grad_reducer.h),
// with, for the ranks: the time finish() still waited after backward (the
// exposed communication), the time the same buckets take as blocking
// allreduces after the step (the communication itself), and so the fraction
// backward hid: 1 - exposed / blocking. Each configuration runs in its own
// process (this executable with --dp-child), the ranks under mpirun.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench/bench.h"
#include "core/blas.h"
#include "models/gpt.h"
#include "optim/adamw.h"
#include "train/dist/grad_reducer.h"
#include "train/dist/mpi.h"

namespace tg::bench {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Numbers a child prints: step s, exposed s, blocking allreduce s, copy s, buckets, MB.
std::vector<double> child(const std::string& cmd) {
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) throw Error("bench: cannot start " + cmd);
    std::vector<double> v;
    double x;
    while (std::fscanf(p, "%lf", &x) == 1) v.push_back(x);
    if (pclose(p) != 0 || v.size() != 6) throw Error("bench: dp child failed: " + cmd);
    return v;
}

}  // namespace

int run_dp_child(const Options& opt) {
    const int world = dist::world(), rank = dist::rank();
    set_num_threads(world > 1 ? 1 : 2);
    models::GPTConfig cfg = models::preset("gpt2-124m");
    manual_seed(123);
    models::GPTModel model(cfg);
    std::vector<optim::ParamRef> refs;
    for (auto& [n, t] : model.named_parameters()) refs.push_back({n, t});
    optim::AdamW adam(refs, {.lr = 4e-4, .weight_decay = 0.1});
    const int64_t B = 2, T = cfg.context_length;
    train::Batch b;
    b.input = b.target = Ids{{B, T}, std::vector<int64_t>(static_cast<size_t>(B * T))};
    for (int64_t i = 0; i < B * T; ++i) {
        b.input.data[i] = (i * 7919) % cfg.vocab_size;
        b.target.data[i] = (i * 104729 + 1) % cfg.vocab_size;
    }
    train::Batch mine = train::slice_rows(b, train::rank_rows(B, rank, world));
    std::unique_ptr<train::GradReducer> red;
    if (world > 1) red = std::make_unique<train::GradReducer>(model.parameters(), 25.0);
    double step = 0, exposed = 0, copy = 0;
    for (int r = 0; r < opt.reps + 1; ++r) {  // the first step warms the buffer pool
        dist::barrier();
        auto t0 = Clock::now();
        adam.zero_grad();
        Tensor loss = cross_entropy(model.forward(mine.input), mine.target);
        if (red) red->begin();
        loss.backward();
        if (red) red->finish();
        adam.step();
        double s = since(t0);
        if (r == 0) continue;
        step += s / opt.reps;
        if (red) {
            exposed += red->last().exposed_s / opt.reps;
            copy += red->last().copy_s / opt.reps;
        }
    }
    // The communication alone: the same buckets as blocking allreduces.
    double blocking = 0;
    int64_t bytes = red ? red->last().bytes : 0;
    if (red) {
        std::vector<float> buf(static_cast<size_t>(bytes / 4), 1.0f);
        const int64_t cap = static_cast<int64_t>(25e6 / 4);
        for (int r = 0; r < opt.reps; ++r) {
            dist::barrier();
            auto t0 = Clock::now();
            for (int64_t off = 0; off < static_cast<int64_t>(buf.size()); off += cap)
                dist::allreduce_sum(buf.data() + off, std::min<int64_t>(cap, buf.size() - off));
            blocking += since(t0) / opt.reps;
        }
    }
    if (rank == 0)
        fmt::print("{} {} {} {} {} {}\n", step, exposed, blocking, copy, red ? red->num_buckets() : 0,
                   static_cast<double>(bytes) / 1e6);
    std::fflush(stdout);
    return 0;
}

void run_dp(const Options& opt) {
    fmt::print("\n== data parallel: GPT_CONFIG_124M step, global batch 2 x 256 (--only dp) ==\n");
    auto one = child(fmt::format("{} --reps {} --dp-child", opt.self, opt.reps));
    auto two = child(
        fmt::format("mpirun --allow-run-as-root --oversubscribe --bind-to core -np 2 {} --reps {} --dp-child",
                    opt.self, opt.reps));
    fmt::print("{:<34} {:>9.3f} s/step\n", "1 process x 2 threads", one[0]);
    fmt::print("{:<34} {:>9.3f} s/step  ({:.2f}x the single process)\n", "mpirun -np 2 x 1 thread", two[0],
               one[0] / two[0]);
    fmt::print("  gradient {:.1f} MB in {:.0f} buckets of <= 25 MB; pack/unpack {:.3f} s\n", two[5], two[4],
               two[3]);
    fmt::print("  allreduce, blocking after the step:  {:.3f} s  ({:.2f} GB/s of gradient)\n", two[2],
               two[5] / 1e3 / std::max(two[2], 1e-9));
    fmt::print("  left to wait after backward:         {:.3f} s  -> hidden by backward: {:.0f}%\n", two[1],
               100.0 * std::max(0.0, 1.0 - two[1] / std::max(two[2], 1e-9)));
}

}  // namespace tg::bench
