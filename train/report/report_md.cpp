#include "train/report/report_md.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "models/safetensors.h"
#include "nn/attention.h"
#include "train/io/csv.h"
#include "train/io/json_text.h"
#include "train/report/plots.h"
#include "train/report/report_html.h"
#include "train/run/summary.h"

namespace tg::train {
namespace fs = std::filesystem;
namespace {

nlohmann::json read_json(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw Error("tapegrad: report: cannot read '" + path + "'");
    try {
        return nlohmann::json::parse(f);
    } catch (const nlohmann::json::exception& e) {
        throw Error("tapegrad: report: '" + path + "' is not valid JSON (a damaged run file): " + e.what());
    }
}

struct Stat {
    double sum = 0;
    int n = 0;
    double mean() const { return n ? sum / n : std::nan(""); }
};

// Mean of a dynamics column over all heads and layers, at steps in [lo, hi].
double mean_col(const Csv& c, const std::string& col, double lo, double hi) {
    Stat s;
    for (size_t r = 0; r < c.rows.size(); ++r) {
        double st = c.at(r, "step"), v = c.at(r, col);
        if (st >= lo && st <= hi && !std::isnan(v)) {
            s.sum += v;
            s.n++;
        }
    }
    return s.mean();
}

std::string dynamics_section(const std::string& run_dir, const std::vector<std::string>& variants) {
    std::map<std::string, Csv> dyn;
    for (auto& v : variants)
        if (fs::exists(run_dir + "/" + v + "/dynamics.csv"))
            dyn[v] = read_csv(run_dir + "/" + v + "/dynamics.csv");
    if (dyn.empty()) return "";
    std::string md =
        "\n## Gradient dynamics\n\n"
        "Per layer and head, G = dL/dM is the gradient with respect to the effective bilinear matrix "
        "(mha: M = Wq^T Wk; alt1: M = S^T). Each optimizer step changes M by dM; for mha dM = query term "
        "dWq^T Wk + key term Wq^T dWk + cross term dWq^T dWk, for alt1 dM = dS^T. Figures below are means "
        "over all layers and heads (see `dynamics.csv` for each head).\n\n"
        "| variant | probed steps | ||G|| | ||dM||/||M|| | cos(dM, -G) | query share | key share | cross "
        "share | "
        "stable rank of M (first -> last) | effective rank (first -> last) |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n";
    std::string words;
    for (const std::string& v : variants) {
        if (!dyn.count(v)) continue;
        const Csv& c = dyn.at(v);
        double first = 1e300, last = -1;
        int64_t n_steps = 0;
        std::vector<double> steps;
        for (size_t r = 0; r < c.rows.size(); ++r) {
            double s = c.at(r, "step");
            if (std::find(steps.begin(), steps.end(), s) == steps.end()) steps.push_back(s);
            first = std::min(first, s);
            last = std::max(last, s);
        }
        // The variant's parametrisation is its last row's (a merged row has ds_norm).
        // A branch of `compare --fork-at` begins with the trunk's rows, in the other
        // parametrisation: its figures start at its own first row, the fork.
        auto is_merged = [&](size_t r) { return !std::isnan(c.at(r, "ds_norm")); };
        bool merged = !c.rows.empty() && is_merged(c.rows.size() - 1);
        size_t own_row = 0;  // rows are in step order: the first after the trunk's
        for (size_t r = 0; r < c.rows.size(); ++r)
            if (is_merged(r) != merged) own_row = r + 1;
        bool forked = own_row > 0;
        if (!c.rows.empty()) first = c.at(own_row, "step");
        n_steps = static_cast<int64_t>(
            std::count_if(steps.begin(), steps.end(), [&](double s) { return s >= first; }));
        double q = mean_col(c, "term_q_norm", first, 1e300), k = mean_col(c, "term_k_norm", first, 1e300),
               x = mean_col(c, "term_x_norm", first, 1e300);
        double tot = q + k + x;
        double cosm = mean_col(c, "dm_cos", first, 1e300);
        double sr0 = mean_col(c, "stable_rank", first, first), sr1 = mean_col(c, "stable_rank", last, last);
        double er0 = mean_col(c, "effective_rank", first, first),
               er1 = mean_col(c, "effective_rank", last, last);
        auto pct = [&](double t) {
            return merged ? std::string("-") : fmt::format("{:.1f}%", 100 * t / tot);
        };
        md += fmt::format(
            "| {} | {} | {:.3g} | {:.3g} | {:.3f} | {} | {} | {} | {:.2f} -> {:.2f} | {:.1f} -> {:.1f} |\n",
            v, n_steps, mean_col(c, "g_norm", first, 1e300), mean_col(c, "dm_rel", first, 1e300), cosm,
            pct(q), pct(k), pct(x), sr0, sr1, er0, er1);
        if (!merged) {
            std::string dom = q >= k && q >= x ? "query" : (k >= x ? "key" : "cross");
            words += fmt::format(
                "- **{}**: the {} term carries the largest share of the update to M ({:.1f}% of the summed "
                "term norms; query {:.1f}%, key {:.1f}%, cross {:.1f}%). The cross term dWq^T dWk is second "
                "order and stays small. On average dM points {:.3f} along -G (cosine), i.e. the factored "
                "update does not follow the merged gradient direction: each factor's gradient is G "
                "preconditioned by the other factor (Wk G^T, Wq G) and AdamW rescales it per element. "
                "Stable rank of M goes {:.2f} -> {:.2f}, effective rank {:.1f} -> {:.1f} (M has rank <= "
                "HS).\n",
                v, dom, 100 * std::max({q, k, x}) / tot, 100 * q / tot, 100 * k / tot, 100 * x / tot, cosm,
                sr0, sr1, er0, er1);
        } else {
            words += fmt::format(
                "- **{}**: dM = dS^T is the only term. Its cosine with -G averages {:.3f}: under plain SGD "
                "it "
                "would be exactly 1 (dS^T = -lr G), so the gap is AdamW's per-element normalisation alone. "
                "Stable rank of M goes {:.2f} -> {:.2f}, effective rank {:.1f} -> {:.1f} (M is a full "
                "C x C matrix).\n",
                v, cosm, sr0, sr1, er0, er1);
        }
        if (forked)
            words += fmt::format("  (**{}** from step {:.0f}, where it forked from the trunk: the rows "
                                 "before are the trunk's, "
                                 "in the other parametrisation, and are left out of its figures.)\n",
                                 v, first);
    }
    md += "\n" + words + "\n";
    md += "![update terms](dynamics_terms.png)\n\n![cosines with -G](dynamics_cosines.png)\n\n"
          "![rank of M](dynamics_rank.png)\n\n![spectra](dynamics_spectra.png)\n";
    return md;
}

}  // namespace

std::vector<std::string> run_variants(const std::string& run_dir) {
    std::vector<std::string> out;
    if (!fs::is_directory(run_dir)) throw Error("tapegrad: report: '" + run_dir + "' is not a directory");
    for (auto& e : fs::directory_iterator(run_dir)) {
        if (!e.is_directory()) continue;
        if (fs::exists(e.path() / "metrics.csv"))
            out.push_back(e.path().filename().string());
        else if (fs::exists(e.path() / "summary.json") || fs::exists(e.path() / "dynamics.csv"))
            std::cerr << fmt::format("tapegrad: report: skipped '{}': it has no metrics.csv\n",
                                     e.path().string());
    }
    // The variants' report_order (nn::AttentionTraits: mha first), then by name;
    // a folder that is no registered variant (a sweep spec) sorts as order 1.
    auto order = [](const std::string& v) {
        const nn::AttentionTraits* t = nn::find_attention_traits(v);
        return t ? t->report_order : 1;
    };
    std::sort(out.begin(), out.end(),
              [&](auto& a, auto& b) { return order(a) != order(b) ? order(a) < order(b) : a < b; });
    if (out.empty() && fs::exists(fs::path(run_dir) / "metrics.csv"))
        throw Error("tapegrad: report: '" + run_dir +
                    "' is one run's folder (train --out); report reads a compare folder, one subfolder "
                    "per variant (mha/, alt1/) as `tapegrad compare --out` writes it: give the folder "
                    "above the runs, or put each run in a subfolder named by its variant");
    if (out.empty())
        throw Error("tapegrad: report: no run (a folder with metrics.csv) under '" + run_dir + "'");
    return out;
}

// The settings the report is about: the first run's full configuration
// (summary.json), and for every other run what differs from it (the attention
// variant, and anything else a user should see before comparing the numbers).
static std::string configuration_section(const std::vector<std::string>& variants,
                                         const std::vector<nlohmann::json>& sums) {
    if (!sums[0].contains("configuration"))
        return "\nThe runs record no full configuration (made by an older tapegrad).\n";
    std::string md = "\nConfiguration of " + variants[0] + " (every setting that changes the numbers): `" +
                     json_text(sums[0]["configuration"], "report.md") + "`\n";
    for (size_t i = 1; i < variants.size(); ++i) {
        std::string d =
            configuration_diff(sums[0]["configuration"], sums[i].value("configuration", nlohmann::json()),
                               variants[0], variants[i]);
        md +=
            "\n" + variants[i] + (d.empty() ? " has the same configuration.\n" : " differs in: " + d + ".\n");
    }
    return md;
}

// Every input is read and checked before the first plot is drawn, so a damaged
// run is refused naming the file and leaves no partial plots/ behind; if gnuplot
// fails midway, a plots/ folder this call created is removed again.
std::string write_report(const std::string& run_dir) {
    std::vector<std::string> variants = run_variants(run_dir);
    std::string md = "# tapegrad compare: " + fs::path(run_dir).filename().string() + "\n\n";
    md +=
        "| variant | parameters | steps | seconds / step | tokens / s | final train loss | final val loss |\n"
        "|---|---|---|---|---|---|---|\n";
    std::vector<nlohmann::json> sums;
    for (auto& v : variants) {
        std::string path = run_dir + "/" + v + "/summary.json";
        auto s = read_json(path);
        try {
            md += fmt::format("| {} | {} | {} | {:.3f} | {:.0f} | {:.3f} | {:.3f} |\n", v,
                              s.at("num_parameters").get<int64_t>(), s.at("steps").get<int64_t>(),
                              s.at("seconds_per_step").get<double>(), s.at("tokens_per_second").get<double>(),
                              s.value("final_train_loss", std::nan("")),
                              s.value("final_val_loss", std::nan("")));
            for (const char* k :
                 {"config", "lr", "weight_decay", "seed", "batch_size", "epochs", "book_lines", "samples"})
                (void)s.at(k);
        } catch (const nlohmann::json::exception& e) {
            throw Error("tapegrad: report: '" + path + "' is incomplete or damaged: " + e.what());
        }
        sums.push_back(s);
        // refuses a damaged file naming line and column; a cut one is said
        Csv m = read_csv(run_dir + "/" + v + "/metrics.csv");
        if (static_cast<int64_t>(m.rows.size()) < s.value("steps", int64_t{0}))
            std::cerr << fmt::format("tapegrad: report: '{}/{}/metrics.csv' holds {} of the run's {} steps "
                                     "(truncated): its curves stop there\n",
                                     run_dir, v, m.rows.size(), s.value("steps", int64_t{0}));
        if (fs::exists(run_dir + "/" + v + "/dynamics.csv"))
            read_csv(run_dir + "/" + v + "/dynamics.csv");
        else if (s.value("probe_every", int64_t{0}) > 0)
            std::cerr << fmt::format("tapegrad: report: '{}/{}/dynamics.csv' is missing: the dynamics plots "
                                     "leave {} out\n",
                                     run_dir, v, v);
    }
    fs::path pdir = fs::path(run_dir) / "plots";
    bool had_plots = fs::exists(pdir);
    try {
        plot_losses(run_dir, variants);
        plot_dynamics(run_dir, variants);
    } catch (...) {
        std::error_code ec;
        if (!had_plots) fs::remove_all(pdir, ec);
        throw;
    }
    md +=
        "\nSettings: " + json_text(sums[0]["config"], "report.md") +
        fmt::format(", lr {}, weight decay {}, seed {}, batch {}, epochs {}.\n", sums[0]["lr"].get<double>(),
                    sums[0]["weight_decay"].get<double>(), sums[0]["seed"].get<uint64_t>(),
                    sums[0]["batch_size"].get<int64_t>(), sums[0]["epochs"].get<int64_t>());
    md += configuration_section(variants, sums);
    md += "\n![loss](loss.png)\n\n## Loss lines\n\n";
    for (size_t i = 0; i < variants.size(); ++i)
        md += "**" + variants[i] + "**\n```\n" + sums[i]["book_lines"].get<std::string>() + "```\n";
    md += "\n## Samples after each epoch (\"Every effort moves you\")\n\n";
    for (size_t i = 0; i < variants.size(); ++i) {
        md += "**" + variants[i] + "**\n\n";
        int ep = 1;
        for (auto& s : sums[i]["samples"]) md += fmt::format("{}. {}\n", ep++, s.get<std::string>());
        md += "\n";
    }
    md += dynamics_section(run_dir, variants);
    models::write_file_atomic(run_dir + "/report.md", md);
    std::vector<HtmlRun> runs;
    for (auto& v : variants) runs.push_back({v, run_dir + "/" + v});
    return write_report_html(run_dir, "tapegrad compare: " + fs::path(run_dir).filename().string(), runs);
}

}  // namespace tg::train
