// tapegrad_bench: `make bench` runs it. --reps N, --only core.
#include <fmt/format.h>

#include <cstring>
#include <string>

#include "bench/bench.h"
#include "core/blas.h"

int main(int argc, char** argv) {
    tg::bench::Options opt;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--reps" && i + 1 < argc) opt.reps = std::stoi(argv[++i]);
        else if (a == "--only" && i + 1 < argc) opt.what = argv[++i];
        else if (a == "--torch") opt.torch = true;
        else {
            fmt::print(stderr, "usage: tapegrad_bench [--reps N] [--only core|step] [--torch]\n");
            return 2;
        }
    }
    if (opt.what == "all" || opt.what == "core") tg::bench::run_core(opt);
    if (opt.what == "all" || opt.what == "step") tg::bench::run_step(opt);
    return 0;
}
