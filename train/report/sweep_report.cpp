#include "train/report/sweep_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "models/safetensors.h"
#include "train/io/csv.h"
#include "train/report/plots.h"
#include "train/report/report_html.h"
#include "train/study/stats.h"

namespace tg::train {
namespace fs = std::filesystem;
namespace {

using Series = std::map<int64_t, std::map<std::string, double>>;

const std::vector<uint64_t>& eval_seeds(const SweepPlan& p) {
    return p.eval_seeds.empty() ? p.selection_seeds : p.eval_seeds;
}

// The evaluation runs of one variant at its chosen lr, in eval-seed order.
std::vector<const SweepRun*> eval_runs(const SweepPlan& p, const std::vector<SweepRun>& runs,
                                       const std::string& variant, double lr) {
    std::vector<const SweepRun*> out;
    for (uint64_t s : eval_seeds(p))
        for (const SweepRun& r : runs)
            if (r.variant == variant && r.lr == lr && r.seed == s) out.push_back(&r);
    return out;
}

std::vector<double> field(const std::vector<const SweepRun*>& rs, double SweepRun::*f) {
    std::vector<double> v;
    for (const SweepRun* r : rs) v.push_back(r->*f);
    return v;
}

// Validation loss at each evaluated step of one run's metrics.csv.
std::map<int64_t, double> val_curve(const std::string& dir) {
    std::map<int64_t, double> out;
    Csv m = read_csv(dir + "/metrics.csv");
    for (size_t r = 0; r < m.rows.size(); ++r)
        if (!std::isnan(m.at(r, "val_loss")))
            out[static_cast<int64_t>(m.at(r, "step"))] = m.at(r, "val_loss");
    return out;
}

// One .dat block per variant: step, mean, min, max over the runs' curves.
std::string band_data(const std::vector<std::map<int64_t, double>>& curves) {
    std::string dat;
    if (curves.empty()) return dat;
    for (auto& [step, v0] : curves.front()) {
        std::vector<double> v;
        for (auto& c : curves)
            if (c.count(step)) v.push_back(c.at(step));
        if (v.size() != curves.size()) continue;
        dat += fmt::format("{} {:.6g} {:.6g} {:.6g}\n", step, stats::mean(v),
                           *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()));
    }
    return dat;
}

void plot_bands(const std::string& out_dir, const std::string& name, const std::string& ylabel,
                const std::vector<std::pair<std::string, std::string>>& blocks) {
    fs::path pdir = fs::path(out_dir) / "plots";
    fs::create_directories(pdir);
    std::string plots;
    for (size_t i = 0; i < blocks.size(); ++i) {
        std::string dat = fmt::format("{}_{}.dat", name, i);
        std::ofstream(pdir / dat) << blocks[i].second;
        plots += fmt::format("{}'{}' using 1:3:4 with filledcurves lc {} fs transparent solid 0.25 notitle, "
                             "'{}' using 1:2 with lines lw 2 lc {} title '{}'",
                             i ? ", " : "", dat, i + 1, dat, i + 1, blocks[i].first);
    }
    std::string script =
        fmt::format("set terminal pngcairo noenhanced size 900,500 font ',10'\nset output '{}.png'\n"
                    "set xlabel 'step'\nset ylabel '{}'\nset key top right\nset grid\nplot {}\n",
                    name, ylabel, plots);
    std::ofstream(pdir / (name + ".gp")) << script;
    run_gnuplot((pdir / (name + ".gp")).string());
}

std::string cell(const stats::Summary& s, int digits = 3) { return s.str(digits); }

std::string join(const std::vector<uint64_t>& v) {
    std::string out;
    for (uint64_t x : v) out += (out.empty() ? "" : ", ") + std::to_string(x);
    return out;
}

}  // namespace

Series dynamics_by_step(const std::string& csv_path) {
    Csv c = read_csv(csv_path);
    std::map<int64_t, std::map<std::string, std::pair<double, int>>> acc;
    auto add = [&](int64_t step, const std::string& k, double v) {
        if (std::isnan(v)) return;
        auto& a = acc[step][k];
        a.first += v;
        a.second++;
    };
    for (size_t r = 0; r < c.rows.size(); ++r) {
        int64_t step = static_cast<int64_t>(c.at(r, "step"));
        double q = c.at(r, "term_q_norm"), k = c.at(r, "term_k_norm"), x = c.at(r, "term_x_norm");
        double fro = c.at(r, "m_norm"), nuc = c.at(r, "nuclear");
        add(step, "dm_cos", c.at(r, "dm_cos"));
        if (!std::isnan(q) && q + k + x > 0) {
            add(step, "share_q", q / (q + k + x));
            add(step, "share_k", k / (q + k + x));
            add(step, "share_x", x / (q + k + x));
        }
        add(step, "stable_rank", c.at(r, "stable_rank"));
        add(step, "effective_rank", c.at(r, "effective_rank"));
        add(step, "nuclear", nuc);
        add(step, "frobenius", fro);
        if (fro > 0) add(step, "nuc_over_frob", nuc / fro);
    }
    Series out;
    for (auto& [step, m] : acc)
        for (auto& [k, a] : m) out[step][k] = a.first / a.second;
    return out;
}

namespace {

// Paired differences of every later variant against every earlier one, on the
// seeds both ran (the first variant's batch order, so seed noise shared by the
// pair cancels): d_s = later_s - earlier_s, mean +- sd and a 95% t-interval
// over seeds. Every pair, not only against the first variant, so a design's
// single contrasts (merging at equal rank, rank, the projection) are read off
// directly. Appends one plain-words line per pair to `words`.
std::string paired_section(const SweepPlan& p, const std::vector<std::vector<const SweepRun*>>& per_variant,
                           std::string& words) {
    std::string md =
        "\n## Paired differences on the same seeds (later variant minus earlier variant)\n\n"
        "| variant | minus | final val loss | best val loss | final train loss |\n|---|---|---|---|---|\n";
    auto verdict = [](const stats::Summary& s) {
        return s.excludes_zero() ? std::string("larger than seed noise (the 95% interval excludes 0)")
                                 : std::string("within seed noise (the 95% interval contains 0)");
    };
    for (size_t a = 0; a < p.variants.size(); ++a)
        for (size_t i = a + 1; i < p.variants.size(); ++i) {
            if (per_variant[i].size() != per_variant[a].size() || per_variant[i].empty()) continue;
            auto diff = [&](double SweepRun::*f) {
                return stats::paired_difference(field(per_variant[i], f), field(per_variant[a], f));
            };
            auto d_final = diff(&SweepRun::final_val_loss);
            auto d_best = diff(&SweepRun::best_val_loss);
            auto d_train = diff(&SweepRun::final_train_loss);
            const std::string &ref = p.variants[a].spec, &var = p.variants[i].spec;
            md += fmt::format("| {} | {} | {} | {} | {} |\n", var, ref, cell(d_final), cell(d_best),
                              cell(d_train));
            words += fmt::format(
                "- **{}** vs **{}**: final validation loss {:+.3f} ({}); best validation loss {:+.3f} "
                "({}); final training loss {:+.3f} ({}).\n",
                var, ref, d_final.mean, verdict(d_final), d_best.mean, verdict(d_best), d_train.mean,
                verdict(d_train));
        }
    return md;
}

// Each variant's loss against the learning rate on the selection seeds: mean
// (sd) of the selection loss (the whole-split final evaluation when the runs
// made one), the chosen rate, and whether the grid brackets it (a rate tried on
// each side). An lr-from variant says whose rate it takes.
std::string lr_profile_section(const SweepPlan& p, const std::vector<SweepRun>& runs,
                               const std::vector<std::pair<std::string, double>>& chosen) {
    std::vector<double> all;
    std::vector<std::vector<double>> grids;
    for (const SweepVariant& v : p.variants) {
        grids.push_back(v.selected() ? variant_grid(p, v, runs) : std::vector<double>{});
        all.insert(all.end(), grids.back().begin(), grids.back().end());
    }
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    std::string md =
        "## Learning rate, chosen on the selection seeds\n\nMean (sd) over the selection seeds of the final "
        "validation loss (over the whole split where the runs evaluated it); `-`: not tried. A rate is "
        "bracketed when the variant tried a lower and a higher one and both were worse.\n\n| variant |";
    for (double lr : all) md += fmt::format(" lr {:g} |", lr);
    md += " chosen | bracketed |\n|---|";
    for (size_t i = 0; i < all.size() + 2; ++i) md += "---|";
    md += "\n";
    for (size_t i = 0; i < p.variants.size(); ++i) {
        const SweepVariant& v = p.variants[i];
        md += "| " + v.label() + " |";
        for (double lr : all) {
            std::vector<double> x;
            if (std::count(grids[i].begin(), grids[i].end(), lr))
                for (const SweepRun& r : runs)
                    if (r.variant == v.spec && r.lr == lr &&
                        std::count(p.selection_seeds.begin(), p.selection_seeds.end(), r.seed))
                        x.push_back(selection_loss(r));
            md += x.empty() ? " - |" : fmt::format(" {:.4f} ({:.4f}) |", stats::mean(x), stats::sd(x));
        }
        const double lr = chosen[i].second;
        std::string br = !v.selected()                        ? "from " + v.lr_from
                         : grids[i].size() < 3                 ? "no (fewer than 3 rates)"
                         : lr == grids[i].front() || lr == grids[i].back() ? "**no: at the edge**"
                                                                         : "yes";
        md += fmt::format(" {:g} | {} |\n", lr, br);
    }
    return md + "\n";
}

// The primary contrasts fixed in advance (plan.contrasts, e.g. C-B, D-C, D-A):
// paired over the evaluation seeds both ran, on the selection loss; a paired
// t-test of no difference and TOST equivalence within +-plan.sesoi, each
// Holm-corrected over the family; and the power the measured paired sd gives
// the design to detect a difference of plan.sesoi.
std::string contrasts_section(const SweepPlan& p, const std::vector<SweepRun>& runs,
                              const std::vector<std::pair<std::string, double>>& chosen) {
    if (p.contrasts.empty()) return "";
    auto index_of = [&](const std::string& name) -> size_t {
        for (size_t i = 0; i < p.variants.size(); ++i)
            if (p.variants[i].label() == name) return i;
        throw Error("tapegrad: sweep report: contrast names '" + name + "', which is no variant's name");
    };
    struct Row {
        std::string name;
        stats::PairedTest t;
    };
    std::vector<Row> rows;
    for (const auto& [a, b] : p.contrasts) {
        size_t ia = index_of(a), ib = index_of(b);
        std::vector<double> xa, xb;
        for (uint64_t s : variant_eval_seeds(p, p.variants[ia])) {
            const SweepRun *ra = nullptr, *rb = nullptr;
            for (const SweepRun& r : runs) {
                if (r.seed != s) continue;
                if (r.variant == p.variants[ia].spec && r.lr == chosen[ia].second) ra = &r;
                if (r.variant == p.variants[ib].spec && r.lr == chosen[ib].second) rb = &r;
            }
            if (ra && rb) {
                xa.push_back(selection_loss(*ra));
                xb.push_back(selection_loss(*rb));
            }
        }
        rows.push_back({a + " - " + b, stats::paired_test(xa, xb, p.sesoi)});
    }
    std::vector<double> pd, pt;
    for (auto& r : rows) {
        pd.push_back(r.t.p);
        pt.push_back(r.t.p_tost);
    }
    std::vector<double> hd = stats::holm(pd), ht = stats::holm(pt);
    std::string md = fmt::format(
        "## Primary contrasts (fixed in advance, Holm-corrected)\n\nPaired over the evaluation seeds both "
        "variants ran, on the final validation loss (whole split where evaluated). Difference: two-sided "
        "paired t-test of no difference. Equivalence: two one-sided tests against a smallest effect of "
        "interest of +-{:g} nats (equivalent at the 5% level when the Holm-adjusted TOST p < 0.05). Power: "
        "of the difference test to detect a true difference of {:g} nats, from the measured sd of the "
        "paired differences (a shifted-t approximation).\n\n"
        "| contrast | n | mean difference (95% CI) | sd | p | p Holm | p TOST | p TOST Holm | verdict | "
        "power at {:g} |\n|---|---|---|---|---|---|---|---|---|---|\n",
        p.sesoi, p.sesoi, p.sesoi);
    for (size_t i = 0; i < rows.size(); ++i) {
        const stats::PairedTest& t = rows[i].t;
        std::string verdict = t.diff.n < 2       ? "too few seeds"
                              : hd[i] < 0.05     ? "different"
                              : ht[i] < 0.05     ? fmt::format("equivalent within +-{:g}", p.sesoi)
                                                 : "undecided (neither)";
        md += fmt::format("| {} | {} | {:+.4f} ({:+.4f} .. {:+.4f}) | {:.4f} | {:.3g} | {:.3g} | {:.3g} | "
                          "{:.3g} | {} | {:.2f} |\n",
                          rows[i].name, t.diff.n, t.diff.mean, t.diff.lo, t.diff.hi, t.diff.sd, t.p, hd[i],
                          t.p_tost, ht[i], verdict, stats::paired_power(p.sesoi, t.diff.sd, t.diff.n));
    }
    return md + "\n";
}

// Rows of a CSV file after its header (0 when it is missing).
int64_t csv_rows(const std::string& path) {
    std::ifstream f(path);
    std::string line;
    int64_t n = -1;
    while (std::getline(f, line))
        if (!line.empty()) ++n;
    return std::max<int64_t>(n, 0);
}

// What the report leaves out, said on stderr rather than left as a silent gap:
// run folders without done.json (killed, or still training), a metrics.csv
// with fewer steps than done.json (truncated: its curve stops early), and a
// missing dynamics.csv when the probe was on.
void say_skipped(const SweepPlan& p, const std::vector<SweepRun>& runs) {
    const fs::path root = fs::path(p.out_dir) / "runs";
    if (!fs::is_directory(root)) return;
    for (const auto& e : fs::recursive_directory_iterator(root))
        if (e.is_regular_file() && e.path().filename() == "metrics.csv" &&
            !fs::exists(e.path().parent_path() / "done.json"))
            std::cerr << fmt::format("tapegrad: sweep report: skipped '{}': no done.json (the run did not "
                                     "finish; the sweep trains it again)\n",
                                     e.path().parent_path().string());
    for (const SweepRun& r : runs) {
        int64_t rows = csv_rows(r.dir + "/metrics.csv");
        if (rows < r.steps)
            std::cerr << fmt::format(
                "tapegrad: sweep report: '{}/metrics.csv' holds {} of the run's {} steps "
                "(truncated): its loss curve stops at that point\n",
                r.dir, rows, r.steps);
        if (p.base.probe_every > 0 && !fs::exists(r.dir + "/dynamics.csv"))
            std::cerr << fmt::format("tapegrad: sweep report: '{}/dynamics.csv' is missing: the dynamics "
                                     "figures leave that run out\n",
                                     r.dir);
    }
}

}  // namespace

std::string write_sweep_report(const SweepPlan& p) {
    std::vector<SweepRun> runs = finished_runs(p.out_dir);
    say_skipped(p, runs);
    auto chosen = chosen_lrs(p, runs);
    if (chosen.empty())
        throw Error("tapegrad: sweep report: not every selection run of '" + p.out_dir + "' finished");
    const TrainOptions& b = p.base;
    std::string md =
        fmt::format("# tapegrad sweep: {}\n\nModel {}; {} epochs (max {} steps), batch {}, data `{}`; "
                    "evaluation every {} steps over {} batches; probe every {} steps.\n\n",
                    fs::path(p.out_dir).filename().string(), b.config.describe(), b.epochs, b.max_steps,
                    b.batch_size, b.data_path, b.eval_freq, b.eval_iter, b.probe_every);
    md +=
        fmt::format("Selection seeds {}; evaluation seeds {}.", join(p.selection_seeds), join(eval_seeds(p)));
    if (p.eval_seeds.empty())
        md +=
            " **The evaluation reuses the selection seeds**: the chosen learning rate was picked on the same "
            "runs, so its figures are optimistic (selection bias); pass --eval-seeds for an unbiased "
            "estimate.";
    md +=
        "\nFor each seed every variant trains on the same batches (the first variant's order, replayed).\n\n";

    md += lr_profile_section(p, runs, chosen);

    md += "\n## At the chosen learning rate, over the evaluation seeds\n\nmean +- sd (95% t-interval, n "
          "seeds).\n\n"
          "| variant | lr | parameters | tokens/s | final val loss | best val loss | final train loss |\n"
          "|---|---|---|---|---|---|---|\n";
    std::vector<std::vector<const SweepRun*>> per_variant;
    for (size_t i = 0; i < p.variants.size(); ++i) {
        auto rs = eval_runs(p, runs, p.variants[i].spec, chosen[i].second);
        per_variant.push_back(rs);
        if (rs.empty()) continue;
        md +=
            fmt::format("| {} | {:g} | {} | {:.0f} | {} | {} | {} |\n", p.variants[i].spec, chosen[i].second,
                        rs.front()->num_parameters, stats::mean(field(rs, &SweepRun::tokens_per_second)),
                        cell(stats::summarize(field(rs, &SweepRun::final_val_loss))),
                        cell(stats::summarize(field(rs, &SweepRun::best_val_loss))),
                        cell(stats::summarize(field(rs, &SweepRun::final_train_loss))));
    }

    std::string words = "\n## In plain words\n\n";
    md += paired_section(p, per_variant, words);
    md += contrasts_section(p, runs, chosen);

    // Loss curves and dynamics over the evaluation runs.
    std::vector<std::pair<std::string, std::string>> loss_blocks, ratio_blocks;
    std::string dyn_md;
    for (size_t i = 0; i < p.variants.size(); ++i) {
        std::vector<std::map<int64_t, double>> curves, ratios;
        std::map<std::string, std::vector<double>> first, last;
        for (const SweepRun* r : per_variant[i]) {
            curves.push_back(val_curve(r->dir));
            if (!fs::exists(r->dir + "/dynamics.csv")) continue;
            Series s = dynamics_by_step(r->dir + "/dynamics.csv");
            if (s.empty()) continue;
            std::map<int64_t, double> ratio;
            for (auto& [step, m] : s)
                if (m.count("nuc_over_frob")) ratio[step] = m.at("nuc_over_frob");
            ratios.push_back(ratio);
            for (auto& [k, v] : s.begin()->second) first[k].push_back(v);
            for (auto& [k, v] : s.rbegin()->second) last[k].push_back(v);
        }
        loss_blocks.emplace_back(p.variants[i].spec, band_data(curves));
        if (!ratios.empty()) ratio_blocks.emplace_back(p.variants[i].spec, band_data(ratios));
        if (first.empty()) continue;
        auto fl = [&](const std::string& k, int digits) {
            if (!first.count(k)) return std::string("-");
            return cell(stats::summarize(first[k]), digits) + " -> " +
                   cell(stats::summarize(last[k]), digits);
        };
        auto one = [&](const std::string& k) {
            std::vector<double> all = last.count(k) ? last[k] : std::vector<double>{};
            return all.empty() ? std::string("-") : cell(stats::summarize(all), 3);
        };
        dyn_md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", p.variants[i].spec,
                              cell(stats::summarize(first["frobenius"]), 3), one("dm_cos"), one("share_q"),
                              one("share_k"), one("share_x"), fl("stable_rank", 2), fl("effective_rank", 1),
                              fl("nuc_over_frob", 2));
        std::vector<double> change;
        for (size_t k = 0; k < first["nuc_over_frob"].size(); ++k)
            change.push_back(last["nuc_over_frob"][k] - first["nuc_over_frob"][k]);
        auto ch = stats::summarize(change);
        words +=
            fmt::format("- **{}**: the ratio ||M||_* / ||M||_F of the attention matrices moved {:+.3f} over "
                        "training ({}), {}.\n",
                        p.variants[i].spec, ch.mean, cell(ch),
                        ch.excludes_zero() ? (ch.mean < 0 ? "a fall larger than seed noise: toward lower "
                                                            "nuclear norm relative to Frobenius"
                                                          : "a rise larger than seed noise")
                                           : "within seed noise");
    }
    plot_bands(p.out_dir, "sweep_val_loss", "validation loss", loss_blocks);
    md += "\n## Validation loss over training\n\nMean over the evaluation seeds, band from min to max.\n\n"
          "![validation loss](plots/sweep_val_loss.png)\n";
    if (!dyn_md.empty()) {
        plot_bands(p.out_dir, "sweep_nuc_over_frob", "||M||_* / ||M||_F (mean over heads)", ratio_blocks);
        md += "\n## Gradient dynamics across seeds\n\nMeans over layers and heads per run, then over seeds "
              "(mean +- sd, 95% interval). Shares are each term's norm over the summed term norms (factored "
              "variants only); `first -> last` are the first and last probed steps. Tarzanagh et al. "
              "(arXiv 2308.16898) predict that a factored W_q^T W_k drifts toward low nuclear norm and a "
              "merged "
              "one toward low Frobenius norm: watch the last column.\n\n"
              "| variant | Frobenius norm of M at init | cos(dM, -G) (last) | query share | key share | "
              "cross share | "
              "stable "
              "rank | effective rank | nuclear / Frobenius |\n|---|---|---|---|---|---|---|---|---|\n" +
              dyn_md + "\n![nuclear over Frobenius norm](plots/sweep_nuc_over_frob.png)\n";
    }
    md += words;
    models::write_file_atomic(p.out_dir + "/report.md", md);
    // report.html: the evaluation runs, seed by seed with the variants side by
    // side (heads of different seeds are different heads: never averaged).
    std::vector<HtmlRun> html_runs;
    for (size_t k = 0; k < eval_seeds(p).size(); ++k)
        for (size_t i = 0; i < p.variants.size(); ++i)
            for (const SweepRun* r : per_variant[i])
                if (r->seed == eval_seeds(p)[k])
                    html_runs.push_back({fmt::format("{} seed {}", p.variants[i].spec, r->seed), r->dir});
    return write_report_html(p.out_dir, "tapegrad sweep: " + fs::path(p.out_dir).filename().string(),
                             html_runs);
}

}  // namespace tg::train
