// tapegrad_bench: `make bench` runs it. --reps N, --only core|step|gen|data|dp|tiles, --torch.
#include <fmt/format.h>

#include <unistd.h>

#include <cstring>
#include <string>

#include "bench/bench.h"
#include "core/blas.h"
#include "train/dist/mpi.h"

int main(int argc, char** argv) {
    // tapegrad's default wait policy (core/blas.h), so the bench times what
    // `tapegrad train` runs; the contended row sets each policy explicitly.
    tg::exec_with_default_wait_policy(argv);
    tg::bench::Options opt;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--reps" && i + 1 < argc)
            opt.reps = std::stoi(argv[++i]);
        else if (a == "--only" && i + 1 < argc)
            opt.what = argv[++i];
        else if (a == "--dp-child")
            opt.child = "dp";
        else if (a == "--step-only")
            opt.step_only = true;
        else if (a == "--torch")
            opt.torch = true;
        else if (a == "--child" && i + 2 < argc) {
            opt.child = std::string(argv[i + 1]) + " " + argv[i + 2];
            i += 2;
        } else {
            fmt::print(stderr, "usage: tapegrad_bench [--reps N] [--only "
                               "core|step|contended|gen|data|dp|tiles] [--torch]\n");
            return 2;
        }
    }
    // popen runs a shell, in which /proc/self/exe would be the shell: resolve it here.
    char self[4096] = {0};
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    opt.self = n > 0 ? std::string(self, static_cast<size_t>(n)) : std::string(argv[0]);
    if (opt.child == "dp") {  // one configuration of the dp row, a rank under mpirun
        tg::dist::init(&argc, &argv);
        int rc = tg::bench::run_dp_child(opt);
        tg::dist::finalize();
        return rc;
    }
    if (opt.child.rfind("loader ", 0) == 0) return tg::bench::run_loader_child(opt, opt.child.substr(7));
    if (!opt.child.empty()) return tg::bench::run_step_child(opt);
    if (opt.what == "all" || opt.what == "core") tg::bench::run_core(opt);
    if (opt.what == "all" || opt.what == "step") tg::bench::run_step(opt);
    if (opt.what == "all" || opt.what == "contended") tg::bench::run_contended(opt);
    if (opt.what == "all" || opt.what == "gen") tg::bench::run_generate(opt);
    if (opt.what == "all" || opt.what == "data") tg::bench::run_data(opt);
    if (opt.what == "all" || opt.what == "dp") tg::bench::run_dp(opt);
    if (opt.what == "tiles") tg::bench::run_tiles(opt);  // not in "all": make bench's rows stay as they are
    return 0;
}
