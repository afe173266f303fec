#include "train/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "models/safetensors.h"
#include "train/summary.h"
#include "train/sweep_report.h"

namespace tg::train {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json read_json_file(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw Error("tapegrad: sweep: cannot read '" + path + "'");
    try {
        return json::parse(f);
    } catch (const json::exception& e) {
        throw Error("tapegrad: sweep: '" + path + "' is not valid JSON: " + e.what());
    }
}

// Final and best validation loss, final train loss: from the run's evaluations.
SweepRun describe_run(const SweepVariant& v, double lr, uint64_t seed, const TrainResult& r,
                      const std::string& dir) {
    SweepRun s{v.spec, lr, seed, r.num_parameters, r.steps, 0, r.seconds, NAN, NAN, NAN, dir};
    s.tokens_per_second = r.train_seconds > 0 ? static_cast<double>(r.tokens_seen) / r.train_seconds : 0.0;
    if (!r.evals.empty()) {
        s.final_val_loss = r.evals.back().val_loss;
        s.final_train_loss = r.evals.back().train_loss;
        s.best_val_loss = r.evals.front().val_loss;
        for (const EvalPoint& e : r.evals) s.best_val_loss = std::min(s.best_val_loss, e.val_loss);
    }
    return s;
}

json to_json(const SweepRun& r) {
    return {{"variant", r.variant},
            {"lr", r.lr},
            {"seed", r.seed},
            {"num_parameters", r.num_parameters},
            {"steps", r.steps},
            {"tokens_per_second", r.tokens_per_second},
            {"seconds", r.seconds},
            {"final_val_loss", r.final_val_loss},
            {"best_val_loss", r.best_val_loss},
            {"final_train_loss", r.final_train_loss}};
}

SweepRun from_json(const json& j, const std::string& dir) {
    SweepRun r;
    r.variant = j.at("variant");
    r.lr = j.at("lr");
    r.seed = j.at("seed");
    r.num_parameters = j.at("num_parameters");
    r.steps = j.at("steps");
    r.tokens_per_second = j.at("tokens_per_second");
    r.seconds = j.at("seconds");
    auto num = [&](const char* k) { return j.at(k).is_null() ? NAN : j.at(k).get<double>(); };
    r.final_val_loss = num("final_val_loss");
    r.best_val_loss = num("best_val_loss");
    r.final_train_loss = num("final_train_loss");
    r.dir = dir;
    return r;
}

void write_summary_csv(const std::string& out_dir) {
    std::string csv = "variant,lr,seed,num_parameters,steps,tokens_per_second,seconds,final_val_loss,"
                      "best_val_loss,final_train_loss,dir\n";
    for (const SweepRun& r : finished_runs(out_dir))
        csv +=
            fmt::format("{},{:g},{},{},{},{:.1f},{:.1f},{:.6f},{:.6f},{:.6f},{}\n", r.variant, r.lr, r.seed,
                        r.num_parameters, r.steps, r.tokens_per_second, r.seconds, r.final_val_loss,
                        r.best_val_loss, r.final_train_loss, fs::relative(r.dir, out_dir).string());
    models::write_file_atomic(out_dir + "/summary.csv", csv);
}

class Sweep {
public:
    explicit Sweep(const SweepPlan& p) : p_(p) {}
    // Trains (variant, lr, seed) unless done.json says it finished; false when
    // the run budget of this invocation is spent.
    bool ensure(const SweepVariant& v, double lr, uint64_t seed);
    int64_t trained() const { return trained_; }

private:
    const SweepPlan& p_;
    int64_t trained_ = 0;
};

bool Sweep::ensure(const SweepVariant& v, double lr, uint64_t seed) {
    std::string dir = run_dir(p_.out_dir, v, lr, seed);
    if (fs::exists(dir + "/done.json")) return true;
    if (p_.max_runs >= 0 && trained_ >= p_.max_runs) return false;
    fs::remove_all(dir);  // a killed run's partial files: start it again
    fs::create_directories(dir);
    TrainOptions o = p_.base;
    o.config.attention = v.attention;
    if (v.out_proj) o.config.out_proj = *v.out_proj;
    if (v.qk_dim) o.config.qk_dim = *v.qk_dim;
    o.lr = lr;
    o.seed = seed;
    o.out_dir = dir;
    o.save_path.clear();
    o.resume_path.clear();
    // The first variant draws and records the seed's batch order; the others replay it.
    std::string orders_path = fmt::format("{}/orders/seed{}.json", p_.out_dir, seed);
    std::vector<std::vector<int64_t>> orders;
    bool first = v.spec == p_.variants.front().spec;
    if (first) {
        o.record_orders = &orders;
    } else {
        if (!fs::exists(orders_path))
            throw Error(fmt::format("tapegrad: sweep: '{}' is missing: variant '{}' runs before the others "
                                    "at seed {} and writes it",
                                    orders_path, p_.variants.front().spec, seed));
        orders = read_json_file(orders_path).get<std::vector<std::vector<int64_t>>>();
        o.replay_orders = &orders;
    }
    fmt::print("== sweep: {} lr {:g} seed {} ==\n", v.spec, lr, seed);
    std::fflush(stdout);
    TrainResult res = train_model(o);
    write_summary(dir, o, res);
    if (first) {
        fs::create_directories(p_.out_dir + "/orders");
        models::write_file_atomic(orders_path, json(orders).dump());
    }
    models::write_file_atomic(dir + "/done.json",
                              to_json(describe_run(v, lr, seed, res, dir)).dump(2) + "\n");
    write_summary_csv(p_.out_dir);
    trained_++;
    return true;
}

}  // namespace

std::string SweepVariant::folder() const {
    std::string f = spec;
    std::replace(f.begin(), f.end(), ':', '+');
    return f;
}

SweepVariant parse_variant(const std::string& spec) {
    SweepVariant v;
    v.spec = spec;
    size_t colon = spec.find(':');
    v.attention = spec.substr(0, colon);
    if (v.attention.empty()) throw Error("tapegrad: sweep: variant '" + spec + "' has no attention name");
    while (colon != std::string::npos) {
        size_t next = spec.find(':', colon + 1);
        std::string opt =
            spec.substr(colon + 1, next == std::string::npos ? std::string::npos : next - colon - 1);
        colon = next;
        size_t eq = opt.find('=');
        std::string key = opt.substr(0, eq), val = eq == std::string::npos ? "" : opt.substr(eq + 1);
        if (key == "out-proj" && (val == "on" || val == "off")) {
            v.out_proj = val == "on";
        } else if (key == "qk-dim") {
            size_t n = 0;
            long long r = 0;
            try {
                r = std::stoll(val, &n);
            } catch (const std::exception&) {
                n = 0;
            }
            if (n == 0 || n != val.size() || r < 1)
                throw Error("tapegrad: sweep: variant '" + spec + "': qk-dim needs an integer >= 1, not '" +
                            val + "'");
            if (v.attention != "mha")
                throw Error("tapegrad: sweep: variant '" + spec +
                            "': qk-dim is the query/key width of mha; '" + v.attention +
                            "' has no such factors");
            v.qk_dim = r;
        } else {
            throw Error("tapegrad: sweep: variant '" + spec + "': '" + opt +
                        "' is not understood (known: out-proj=on|off, qk-dim=R for mha)");
        }
    }
    return v;
}

std::string lr_folder(double lr) { return fmt::format("lr{:.0e}", lr); }

std::string run_dir(const std::string& out, const SweepVariant& v, double lr, uint64_t seed) {
    return fmt::format("{}/runs/{}/{}/seed{}", out, v.folder(), lr_folder(lr), seed);
}

std::vector<SweepRun> finished_runs(const std::string& out_dir) {
    std::vector<SweepRun> runs;
    if (!fs::is_directory(out_dir + "/runs")) return runs;
    for (auto& e : fs::recursive_directory_iterator(out_dir + "/runs"))
        if (e.is_regular_file() && e.path().filename() == "done.json")
            runs.push_back(from_json(read_json_file(e.path().string()), e.path().parent_path().string()));
    std::sort(runs.begin(), runs.end(), [](const SweepRun& a, const SweepRun& b) {
        return std::tie(a.variant, a.lr, a.seed) < std::tie(b.variant, b.lr, b.seed);
    });
    return runs;
}

std::vector<std::pair<std::string, double>> chosen_lrs(const SweepPlan& plan,
                                                       const std::vector<SweepRun>& runs) {
    std::vector<std::pair<std::string, double>> out;
    for (const SweepVariant& v : plan.variants) {
        double best_lr = NAN, best = INFINITY;
        for (double lr : plan.lrs) {
            double sum = 0;
            size_t n = 0;
            for (const SweepRun& r : runs)
                if (r.variant == v.spec && r.lr == lr &&
                    std::count(plan.selection_seeds.begin(), plan.selection_seeds.end(), r.seed)) {
                    sum += r.final_val_loss;
                    n++;
                }
            if (n != plan.selection_seeds.size()) return {};  // not all selection runs finished
            if (sum / static_cast<double>(n) < best) {
                best = sum / static_cast<double>(n);
                best_lr = lr;
            }
        }
        out.emplace_back(v.spec, best_lr);
    }
    return out;
}

int64_t run_sweep(const SweepPlan& p) {
    if (p.variants.empty() || p.lrs.empty() || p.selection_seeds.empty())
        throw Error("tapegrad: sweep: needs at least one variant, one --lrs value and one --seeds value");
    fs::create_directories(p.out_dir);
    Sweep sweep(p);
    // Selection: for each lr and seed the first variant runs first (it writes the order).
    for (double lr : p.lrs)
        for (uint64_t seed : p.selection_seeds)
            for (const SweepVariant& v : p.variants)
                if (!sweep.ensure(v, lr, seed)) return sweep.trained();
    auto chosen = chosen_lrs(p, finished_runs(p.out_dir));
    const std::vector<uint64_t>& eval_seeds = p.eval_seeds.empty() ? p.selection_seeds : p.eval_seeds;
    for (uint64_t seed : eval_seeds)
        for (size_t i = 0; i < p.variants.size(); ++i)
            if (!sweep.ensure(p.variants[i], chosen[i].second, seed)) return sweep.trained();
    fmt::print("{}\n", write_sweep_report(p));
    return sweep.trained();
}

}  // namespace tg::train
