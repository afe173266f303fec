// The contended row (`--only contended`, issue 17 part 2): the 124M mha training
// step when another busy process shares the cores, under each libgomp wait
// policy. OpenBLAS (Debian's OpenMP build) and tapegrad's loops run on libgomp's
// threads, and a thread that finishes its share of a parallel region waits at
// the barrier for the others: spinning (OMP_WAIT_POLICY=active, and by default
// for ~300000 spins before sleeping) burns a core the busy process wants, and a
// thread of ours descheduled by the busy process holds up every other one.
// libgomp reads the policy once, at load, so each policy runs in its own child
// process (this executable with --child ... --step-only) started with the
// environment variables set. Each policy is timed alone and beside one busy
// process (a forked spinner, `yes > /dev/null` in spirit), as the issue asks.
// The machine may be loaded by others while this runs: read the figures as
// relative, and repeat the row.
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "core/blas.h"
#include "core/tensor.h"

namespace tg::bench {
namespace {

// A process that spins on one core until killed (and dies with the bench).
pid_t start_spinner() {
    pid_t pid = fork();
    if (pid < 0) throw Error("bench: fork failed for the busy process");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        volatile unsigned long x = 0;
        for (;;) x = x + 1;
    }
    return pid;
}

void stop_spinner(pid_t pid) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
}

}  // namespace

void run_contended(const Options& opt) {
    struct Policy {
        const char* name;
        const char* env;
    };
    // -u: the bench's own environment must not decide a row. Each row sets a
    // variable, so tapegrad's own default (passive, core/blas.h) applies to none;
    // libgomp's default is its documented count, 300000 spins, then sleep.
    const std::string clean = "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT";
    std::vector<Policy> policies = {
        {"libgomp default (spin 300000)", "GOMP_SPINCOUNT=300000"},
        {"OMP_WAIT_POLICY=passive", "OMP_WAIT_POLICY=passive"},
        {"GOMP_SPINCOUNT=10000", "GOMP_SPINCOUNT=10000"},
        {"OMP_WAIT_POLICY=active", "OMP_WAIT_POLICY=active"},
    };
    Options o = opt;
    o.reps = std::min(opt.reps, 3);
    fmt::print(
        "\ncontended step: gpt2-124m mha training step (s, best of {}), {} threads, alone and beside one "
        "busy process (a spinning fork)\n",
        o.reps, num_threads());
    fmt::print("{:<28} {:>9} {:>12} {:>10}\n", "wait policy", "alone s", "contended s", "slowdown");
    for (const Policy& p : policies) {
        std::string env = clean + " " + p.env;
        double alone = in_child(o, "gpt2-124m", "mha", true, env)[3];
        pid_t spinner = start_spinner();
        double busy = 0;
        try {
            busy = in_child(o, "gpt2-124m", "mha", true, env)[3];
        } catch (...) {
            stop_spinner(spinner);
            throw;
        }
        stop_spinner(spinner);
        fmt::print("{:<28} {:>9.3f} {:>12.3f} {:>9.2f}x\n", p.name, alone, busy, busy / alone);
        std::fflush(stdout);  // each row as it comes: the whole row takes minutes
    }
}

}  // namespace tg::bench
