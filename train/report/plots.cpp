#include "train/report/plots.h"

#include <fmt/format.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>

#include "train/io/csv.h"

namespace tg::train {
namespace fs = std::filesystem;
namespace {

std::string num(double v) { return std::isnan(v) ? "NaN" : fmt::format("{:.6g}", v); }

void write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path);
    if (!f) throw Error("tapegrad: cannot write '" + path + "'");
    f << text;
}

std::pair<int, int> grid(size_t n) {
    int cols = static_cast<int>(std::min<size_t>(n, 4));
    return {static_cast<int>((n + 3) / 4), std::max(cols, 1)};
}

// Head-mean of each column per (step, layer) of a dynamics.csv.
struct LayerSeries {
    std::map<int64_t, std::map<std::string, double>> by_step;  // step -> column -> mean
};

std::vector<LayerSeries> aggregate(const Csv& c, const std::vector<std::string>& cols) {
    std::vector<LayerSeries> layers;
    std::map<std::pair<int64_t, int64_t>, std::map<std::string, std::pair<double, int>>> acc;
    for (size_t r = 0; r < c.rows.size(); ++r) {
        int64_t step = static_cast<int64_t>(c.at(r, "step")), layer = static_cast<int64_t>(c.at(r, "layer"));
        for (auto& name : cols) {
            double v = c.at(r, name);
            auto& a = acc[{layer, step}][name];
            if (!std::isnan(v)) {
                a.first += v;
                a.second++;
            }
        }
    }
    for (auto& [key, m] : acc) {
        if (static_cast<size_t>(key.first) >= layers.size())
            layers.resize(static_cast<size_t>(key.first) + 1);
        for (auto& [name, a] : m)
            layers[key.first].by_step[key.second][name] = a.second ? a.first / a.second : std::nan("");
    }
    return layers;
}

const std::vector<std::string> kDynCols = {
    "term_q_norm", "term_k_norm", "term_x_norm", "term_s_norm",    "term_q_cos", "term_k_cos", "term_x_cos",
    "term_s_cos",  "dm_cos",      "stable_rank", "effective_rank", "dm_rel",     "g_norm"};

}  // namespace

// gnuplot's output without its "empty x range" warnings: a short run's curve of
// one point (or of equal values) is expected, and gnuplot widens the range itself.
std::string without_empty_range_warnings(const std::string& out) {
    static const std::regex empty_range("empty [xy]2? range", std::regex::icase);
    std::istringstream in(out);
    std::string kept, line;
    while (std::getline(in, line))
        if (!std::regex_search(line, empty_range)) kept += line + "\n";
    return kept;
}

void run_gnuplot(const std::string& script) {
    std::string cmd = "cd '" + fs::path(script).parent_path().string() + "' && gnuplot '" +
                      fs::path(script).filename().string() + "' 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) throw Error(fmt::format("tapegrad: cannot start gnuplot for '{}'", script));
    std::string out;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    int rc = ::pclose(p);
    std::string shown = without_empty_range_warnings(out);
    if (rc != 0)
        throw Error(fmt::format(
            "tapegrad: gnuplot failed on '{}' (exit {}); install it with: apt-get install gnuplot-nox{}",
            script, WIFEXITED(rc) ? WEXITSTATUS(rc) : rc, shown.empty() ? "" : "\n" + shown));
    std::fputs(shown.c_str(), stderr);  // what else gnuplot said is worth seeing
}

void plot_losses(const std::string& run_dir, const std::vector<std::string>& variants) {
    fs::path pdir = fs::path(run_dir) / "plots";
    fs::create_directories(pdir);
    std::string plot_tok, plot_ep;
    for (auto& v : variants) {
        Csv m = read_csv(run_dir + "/" + v + "/metrics.csv");
        std::string dat;
        double epochs = 0;
        for (size_t r = 0; r < m.rows.size(); ++r) epochs = std::max(epochs, m.at(r, "epoch"));
        std::vector<size_t> evals;
        for (size_t r = 0; r < m.rows.size(); ++r)
            if (!std::isnan(m.at(r, "train_loss"))) evals.push_back(r);
        for (size_t i = 0; i < evals.size(); ++i) {  // epochs as the book's linspace(0, epochs, n)
            double ep = evals.size() > 1
                            ? epochs * static_cast<double>(i) / static_cast<double>(evals.size() - 1)
                            : 0;
            dat += fmt::format("{} {} {} {}\n", num(m.at(evals[i], "tokens_seen")), num(ep),
                               num(m.at(evals[i], "train_loss")), num(m.at(evals[i], "val_loss")));
        }
        write_file((pdir / ("loss_" + v + ".dat")).string(),
                   "# tokens_seen epoch train_loss val_loss\n" + dat);
        if (dat.empty()) continue;  // no evaluation (--eval-freq 0): nothing of it to draw
        std::string sep = plot_tok.empty() ? "" : ", ";
        plot_tok += fmt::format(
            "{}'loss_{}.dat' u 1:3 w l lw 2 t '{} train', '' u 1:4 w l lw 2 dt 2 t '{} val'", sep, v, v, v);
        plot_ep += fmt::format(
            "{}'loss_{}.dat' u 2:3 w l lw 2 t '{} train', '' u 2:4 w l lw 2 dt 2 t '{} val'", sep, v, v, v);
    }
    std::string gp = fmt::format(
        "set terminal pngcairo noenhanced size 1200,450 font ',10'\nset output 'loss.png'\n"
        "set multiplot layout 1,2 title 'Training and validation loss'\nset grid\nset ylabel 'loss'\n"
        "set xlabel 'tokens seen'\nplot {}\nset xlabel 'epochs'\nplot {}\nunset multiplot\n",
        plot_tok, plot_ep);
    if (plot_tok.empty())  // no run evaluated: a figure that says so (gnuplot refuses empty data)
        gp = "set terminal pngcairo noenhanced size 1200,450 font ',10'\nset output 'loss.png'\n"
             "unset border\nunset tics\nset xrange [0:1]\nset yrange [0:1]\n"
             "set label 1 'no evaluations to plot (the runs used --eval-freq 0)' at 0.5,0.5 center\n"
             "plot 2 notitle\n";
    std::string script = (pdir / "loss.gp").string();
    write_file(script, gp);
    run_gnuplot(script);
    fs::copy_file(pdir / "loss.png", fs::path(run_dir) / "loss.png", fs::copy_options::overwrite_existing);
}

void plot_dynamics(const std::string& run_dir, const std::vector<std::string>& variants) {
    fs::path pdir = fs::path(run_dir) / "plots";
    fs::create_directories(pdir);
    std::map<std::string, std::vector<LayerSeries>> series;
    std::map<std::string, Csv> raw;
    for (auto& v : variants) {
        std::string p = run_dir + "/" + v + "/dynamics.csv";
        if (!fs::exists(p)) continue;
        raw[v] = read_csv(p);
        series[v] = aggregate(raw[v], kDynCols);
    }
    if (series.empty()) return;
    std::map<std::string, bool> merged;  // alt1-like rows: one term, dS^T
    for (auto& [v, c] : raw) merged[v] = !c.rows.empty() && !std::isnan(c.at(0, "term_s_norm"));
    size_t nl = 0;
    for (auto& [v, s] : series) {
        nl = std::max(nl, s.size());
        for (size_t l = 0; l < s.size(); ++l) {
            std::string dat = "# step";
            for (auto& c : kDynCols) dat += " " + c;
            dat += "\n";
            for (auto& [step, m] : s[l].by_step) {
                dat += std::to_string(step);
                for (auto& c : kDynCols) {
                    dat += ' ';
                    dat += num(m[c]);
                }
                dat += "\n";
            }
            write_file((pdir / fmt::format("dyn_{}_L{}.dat", v, l)).string(), dat);
        }
    }
    const auto layout = grid(nl);  // plain locals: Clang 14 cannot capture structured bindings
    const int rows = layout.first, cols = layout.second;
    auto figure = [&](const std::string& name, const std::string& title, const std::string& setup,
                      const std::function<std::string(const std::string&, size_t)>& curves) {
        std::string gp =
            fmt::format("set terminal pngcairo noenhanced size {},{} font ',9'\nset output '{}.png'\n"
                        "set multiplot layout {},{} title '{}'\nset grid\nset key font ',7'\n{}\n",
                        320 * cols, 260 * rows + 40, name, rows, cols, title, setup);
        for (size_t l = 0; l < nl; ++l) {
            std::string parts;
            for (auto& [v, s] : series)
                if (l < s.size())
                    parts +=
                        (parts.empty() ? "" : ", ") + curves(fmt::format("dyn_{}_L{}.dat|{}", v, l, v), l);
            gp += fmt::format("set title 'layer {}'\nplot {}\n", l, parts);
        }
        gp += "unset multiplot\n";
        std::string script = (pdir / (name + ".gp")).string();
        write_file(script, gp);
        run_gnuplot(script);
        fs::copy_file(pdir / (name + ".png"), fs::path(run_dir) / (name + ".png"),
                      fs::copy_options::overwrite_existing);
    };
    // column numbers in the .dat files: 1 step, then kDynCols in order
    auto colno = [](const std::string& c) {
        for (size_t i = 0; i < kDynCols.size(); ++i)
            if (kDynCols[i] == c) return static_cast<int>(i) + 2;
        return 0;
    };
    auto split = [](const std::string& spec) {
        auto bar = spec.find('|');
        return std::pair{spec.substr(0, bar), spec.substr(bar + 1)};
    };
    figure(
        "dynamics_terms", "||term of dM|| per step (head mean): mha query/key/cross vs alt1 dS^T",
        "set logscale y", [&](const std::string& spec, size_t) {
            auto [file, v] = split(spec);
            if (!merged[v])
                return fmt::format(
                    "'{0}' u 1:{1} w lp pt 7 ps .4 t '{2} query', '{0}' u 1:{3} w lp pt 7 ps .4 t '{2} key', "
                    "'{0}' u 1:{4} w lp pt 7 ps .4 t '{2} cross'",
                    file, colno("term_q_norm"), v, colno("term_k_norm"), colno("term_x_norm"));
            return fmt::format("'{}' u 1:{} w lp pt 5 ps .4 lw 2 t '{} dS^T'", file, colno("term_s_norm"), v);
        });
    figure("dynamics_cosines", "cosine with -G (head mean): each term and the whole dM", "set yrange [-1:1]",
           [&](const std::string& spec, size_t) {
               auto [file, v] = split(spec);
               if (!merged[v])
                   return fmt::format("'{0}' u 1:{1} w l t '{2} query', '{0}' u 1:{3} w l t '{2} key', "
                                      "'{0}' u 1:{4} w l t '{2} cross', '{0}' u 1:{5} w l lw 2 t '{2} dM'",
                                      file, colno("term_q_cos"), v, colno("term_k_cos"), colno("term_x_cos"),
                                      colno("dm_cos"));
               return fmt::format("'{}' u 1:{} w l lw 2 t '{} dM = dS^T'", file, colno("dm_cos"), v);
           });
    figure("dynamics_rank", "rank of M (head mean): stable rank (solid), effective rank (dashed)",
           "set logscale y", [&](const std::string& spec, size_t) {
               auto [file, v] = split(spec);
               return fmt::format(
                   "'{0}' u 1:{1} w lp pt 7 ps .4 t '{2} stable', '{0}' u 1:{3} w l dt 2 t '{2} effective'",
                   file, colno("stable_rank"), v, colno("effective_rank"));
           });
    // spectra: head-mean of sv1..sv8 at the first and the last probed step
    std::string sgp = fmt::format(
        "set terminal pngcairo noenhanced size {},{} font ',9'\nset output 'dynamics_spectra.png'\n"
        "set multiplot layout {},{} title 'top singular values of M (head mean), first vs last probed step'\n"
        "set grid\nset key font ',7'\nset logscale y\nset xlabel 'index'\n",
        320 * cols, 260 * rows + 40, rows, cols);
    for (size_t l = 0; l < nl; ++l) {
        std::string parts;
        for (auto& [v, c] : raw) {
            double first = 1e300, last = -1;
            for (size_t r = 0; r < c.rows.size(); ++r) {
                first = std::min(first, c.at(r, "step"));
                last = std::max(last, c.at(r, "step"));
            }
            std::string dat = "# k sv_first sv_last\n";
            for (int k = 1; k <= 8; ++k) {
                double a = 0, b = 0;
                int na = 0, nb = 0;
                for (size_t r = 0; r < c.rows.size(); ++r) {
                    if (static_cast<size_t>(c.at(r, "layer")) != l) continue;
                    double sv = c.at(r, fmt::format("sv{}", k));
                    if (std::isnan(sv)) continue;
                    if (c.at(r, "step") == first) {
                        a += sv;
                        na++;
                    }
                    if (c.at(r, "step") == last) {
                        b += sv;
                        nb++;
                    }
                }
                dat += fmt::format("{} {} {}\n", k, num(na ? a / na : std::nan("")),
                                   num(nb ? b / nb : std::nan("")));
            }
            std::string file = fmt::format("spectra_{}_L{}.dat", v, l);
            write_file((pdir / file).string(), dat);
            parts +=
                (parts.empty() ? "" : ", ") +
                fmt::format("'{0}' u 1:2 w lp dt 2 t '{1} step {2}', '{0}' u 1:3 w lp lw 2 t '{1} step {3}'",
                            file, v, static_cast<int64_t>(first), static_cast<int64_t>(last));
        }
        sgp += fmt::format("set title 'layer {}'\nplot {}\n", l, parts);
    }
    sgp += "unset multiplot\n";
    write_file((pdir / "dynamics_spectra.gp").string(), sgp);
    run_gnuplot((pdir / "dynamics_spectra.gp").string());
    fs::copy_file(pdir / "dynamics_spectra.png", fs::path(run_dir) / "dynamics_spectra.png",
                  fs::copy_options::overwrite_existing);
}

}  // namespace tg::train
