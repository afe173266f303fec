// `tapegrad sweep`: variants x learning rates x seeds, one run after another,
// resumable, with a report of means, intervals and paired differences
// (train/study/sweep.h). Flags can also come from a TOML file (--config).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>

#include "nn/attention.h"
#include "train/cli/commands.h"
#include "train/cli/flags.h"
#include "train/dist/mpi.h"
#include "train/report/sweep_report.h"
#include "train/run/preflight.h"
#include "train/run/stop_policy.h"
#include "train/study/sweep.h"

namespace tg::cli {
namespace {

// "a, b, c" (not fmt::join: GCC 12 -O3 warns inside fmt's fill parsing).
std::string join_names(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) {
        if (!out.empty()) out += ", ";
        out += n;
    }
    return out;
}

struct SweepFlags {
    TrainFlags train;
    std::vector<std::string> variants = {"mha", "alt1"};
    std::vector<double> lrs;
    std::vector<std::string> seeds, eval_seeds;  // parsed strictly: "-1" must not wrap
    std::string out = "runs/sweep";
    int64_t max_runs = -1;
    bool report_only = false, extend_lrs = false;
    std::string config;
    std::vector<std::string> contrasts;
    double sesoi = 0.02;
};

// Flags from a TOML file (`key = value` lines, the flag names without "--").
// CLI11 reads config files only for the top-level app, so the sweep applies its
// own: a flag given on the command line wins over the file.
void apply_config(CLI::App& sub, const std::string& path) {
    for (const CLI::ConfigItem& item : CLI::ConfigTOML().from_file(path)) {
        CLI::Option* opt = nullptr;
        try {
            opt = sub.get_option("--" + item.name);
        } catch (const CLI::OptionNotFound&) {
            throw Error("tapegrad: sweep --config '" + path + "': '" + item.name +
                        "' is not a flag of sweep");
        }
        if (opt->count() > 0) continue;
        opt->add_result(item.inputs);
        opt->run_callback();
    }
}

std::vector<uint64_t> parse_seeds(const char* flag, const std::vector<std::string>& given) {
    std::vector<uint64_t> seeds;
    for (const std::string& s : given) seeds.push_back(train::parse_u64_strict(flag, s));
    return seeds;
}

// Every value of the grid before the first run trains (a NaN lr, an unknown
// attention), not when its run's turn comes.
void check_grid(const train::SweepPlan& plan) {
    for (double lr : plan.lrs)
        if (!std::isfinite(lr) || lr < 0)
            throw Error(fmt::format("tapegrad: sweep --lrs: {} is not a finite learning rate >= 0", lr));
    std::vector<std::string> known = nn::attention_names();
    for (const train::SweepVariant& v : plan.variants)
        if (std::find(known.begin(), known.end(), v.attention) == known.end())
            throw Error(fmt::format("tapegrad: sweep --variants: '{}': unknown attention '{}' (known: {})",
                                    v.spec, v.attention, join_names(known)));
}

int run_sweep_cmd(CLI::App& sub, SweepFlags& f) {
    if (!f.config.empty()) apply_config(sub, f.config);
    train::SweepPlan plan;
    plan.base = finish(f.train);
    for (const std::string& v : f.variants) {
        plan.variants.push_back(train::parse_variant(v));
        const nn::AttentionTraits* t = nn::find_attention_traits(plan.variants.back().attention);
        if (plan.base.config.qk_dim && !(t && t->qk_factors))
            throw Error("tapegrad: sweep: --qk-dim applies to every variant, but '" + v +
                        "' is not mha: give it per variant (mha:qk-dim=R)");
    }
    plan.lrs = f.lrs.empty() ? std::vector<double>{plan.base.lr} : f.lrs;
    plan.selection_seeds =
        f.seeds.empty() ? std::vector<uint64_t>{plan.base.seed} : parse_seeds("--seeds", f.seeds);
    plan.eval_seeds = parse_seeds("--eval-seeds", f.eval_seeds);
    plan.out_dir = f.out;
    plan.max_runs = f.max_runs;
    plan.extend_lrs = f.extend_lrs;
    plan.sesoi = f.sesoi;
    for (const std::string& c : f.contrasts) {
        size_t m = c.find('-');
        if (m == std::string::npos || m == 0 || m + 1 == c.size())
            throw Error("tapegrad: sweep: --contrasts '" + c + "': expected NAME-NAME (e.g. C-B)");
        plan.contrasts.emplace_back(c.substr(0, m), c.substr(m + 1));
    }
    const models::GPTConfig& bc = plan.base.config;
    if (bc.init != "default" || bc.init_gain != 1.0f || bc.uniform_attention)
        throw Error("tapegrad: sweep: --init, --init-gain and --uniform-attention are per variant here: "
                    "write them into the variant (alt1:init=product, mha:init-gain=G, mha:scores=zero)");
    check_grid(plan);
    if (f.report_only) {
        if (dist::is_root()) fmt::print("{}\n", train::write_sweep_report(plan));
    } else {
        // A stop signal ends the sweep after the runs in flight (each stops
        // after its current step); finished runs are kept, a rerun resumes.
        train::install_stop_handlers();
        int sig = 0;
        int64_t n = train::run_sweep(plan, &sig);
        fmt::print("sweep: trained {} run(s) now, {} finished in all under {}\n", n,
                   train::finished_runs(plan.out_dir).size(), plan.out_dir);
        if (sig != 0) {
            std::cerr << fmt::format("tapegrad: sweep stopped by {}: the finished runs are kept, the stopped "
                                     "ones are trained again by the same command\n",
                                     sig == SIGTERM ? "SIGTERM" : "SIGINT");
            return 128 + sig;
        }
        if (train::chosen_lrs(plan, train::finished_runs(plan.out_dir)).empty() ||
            !std::filesystem::exists(plan.out_dir + "/report.md"))
            return 0;
    }
    fmt::print("wrote {}/summary.csv and {}/report.md\n", plan.out_dir, plan.out_dir);
    return 0;
}

}  // namespace

Command sweep_command() {
    return {"sweep", "variants x learning rates x seeds, resumable, with statistics over seeds",
            [](CLI::App& sub) -> Action {
                auto f = std::make_shared<SweepFlags>();
                f->train.opt.data_path.clear();  // both resolved by finish() (train/run/paths.h)
                f->train.opt.vocab_dir.clear();
                f->train.opt.probe_every = 20;
                f->train.opt.quiet = true;
                sub.add_option("--config", f->config,
                               "read flags from a TOML file (key = value lines; the command line wins)");
                add_train_flags(&sub, f->train, false);
                sub.add_option("--variants", f->variants,
                               "variants: attention[:key=value...] with keys out-proj=on|off, qk-dim=R, "
                               "init-gain=G, scores=zero (mha), init=product (alt1), wd=X, eval-seeds=N, "
                               "lr-from=NAME, name=NAME (e.g. mha:qk-dim=768:out-proj=off:name=B); the first "
                               "draws each seed's batch order and must run at every seed")
                    ->delimiter(',')
                    ->capture_default_str();
                sub.add_option("--lrs", f->lrs, "learning rates to try (default: --lr)")->delimiter(',');
                sub.add_option("--seeds", f->seeds, "selection seeds (default: --seed)")->delimiter(',');
                sub.add_option("--eval-seeds", f->eval_seeds,
                               "seeds for the figures at the chosen lr (default: reuse the selection seeds)")
                    ->delimiter(',');
                sub.add_option("--out", f->out, "sweep directory")->capture_default_str();
                sub.add_option("--max-runs", f->max_runs, "train at most this many runs now (-1: all)")
                    ->capture_default_str();
                sub.add_flag("--report-only", f->report_only, "rewrite report.md from the finished runs");
                sub.add_option("--contrasts", f->contrasts,
                               "primary contrasts for the report, fixed in advance: NAME-NAME by variant name "
                               "(name=...), e.g. C-B,D-C,D-A; tested for a difference and for equivalence, "
                               "Holm-corrected")
                    ->delimiter(',');
                sub.add_option("--sesoi", f->sesoi,
                               "smallest effect of interest in nats for the equivalence tests")
                    ->capture_default_str()
                    ->check(positive_number());
                sub.add_flag("--extend-lrs", f->extend_lrs,
                             "learning rates that bracket: while a variant's best rate is the lowest or highest "
                             "it tried, also try half or twice it (up to 3 times; each variant its own grid)");
                return [f, &sub] { return run_sweep_cmd(sub, *f); };
            }};
}

}  // namespace tg::cli
