#include "train/study/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "models/safetensors.h"
#include "nn/attention.h"
#include "train/dist/mpi.h"
#include "train/io/json_text.h"
#include "train/report/sweep_report.h"
#include "train/io/read_file.h"
#include "train/run/folder_lock.h"
#include "train/run/stop_policy.h"
#include "train/run/summary.h"

namespace tg::train {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Final and best validation loss, final train loss: from the run's evaluations.
SweepRun describe_run(const SweepVariant& v, double lr, uint64_t seed, const TrainResult& r,
                      const std::string& dir) {
    SweepRun s{v.spec, lr, seed, r.num_parameters, r.steps, 0, r.seconds, NAN, NAN, NAN, r.full_val_loss, dir};
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
            {"final_train_loss", r.final_train_loss},
            {"full_val_loss", r.full_val_loss}};
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
    r.full_val_loss = j.contains("full_val_loss") ? num("full_val_loss") : NAN;
    r.dir = dir;
    return r;
}

void write_summary_csv(const std::string& out_dir) {
    std::string csv = "variant,lr,seed,num_parameters,steps,tokens_per_second,seconds,final_val_loss,"
                      "best_val_loss,final_train_loss,full_val_loss,dir\n";
    for (const SweepRun& r : finished_runs(out_dir))
        csv +=
            fmt::format("{},{:g},{},{},{},{:.1f},{:.1f},{:.6f},{:.6f},{:.6f},{:.6f},{}\n", r.variant, r.lr,
                        r.seed, r.num_parameters, r.steps, r.tokens_per_second, r.seconds, r.final_val_loss,
                        r.best_val_loss, r.final_train_loss, r.full_val_loss,
                        fs::relative(r.dir, out_dir).string());
    models::write_file_atomic(out_dir + "/summary.csv", csv);
}

// One run of the grid.
struct Job {
    const SweepVariant* v;
    double lr;
    uint64_t seed;
};

// How a run on this rank ended.
struct Outcome {
    bool trained = false;
    int signal = 0;     // SIGINT/SIGTERM stopped it: no done.json, rerun later
    std::string error;  // it threw (MPI mode: reported to every rank)
};

// Runs jobs in rounds: rank 0 picks up to one pending job per rank, every rank
// trains its own as a single process (dist::SoloScope), then the ranks agree on
// how the round ended (collectives over the whole job, so none waits forever).
// With one process a round is one run, in the order the grid lists them.
class Sweep {
public:
    explicit Sweep(const SweepPlan& p) : p_(p) {}
    // Trains the pending jobs; false when the sweep must end now (run budget
    // spent or a stop signal, see stop_signal()). Throws on a failed run.
    bool run_all(const std::vector<Job>& jobs);
    int64_t trained() const { return trained_; }
    int stop_signal() const { return stop_signal_; }

private:
    bool finished(const Job& j) const {
        return fs::exists(run_dir(p_.out_dir, *j.v, j.lr, j.seed) + "/done.json");
    }
    // A finished run counts only if made by this job's configuration; else it is
    // refused naming the difference, or trained again under --overwrite.
    bool reusable(const Job& j) const;
    TrainOptions options(const Job& j, const std::string& dir) const;
    std::string orders_path(uint64_t seed) const {
        return fmt::format("{}/orders/seed{}.json", p_.out_dir, seed);
    }
    // The first variant draws the seed's batch order; the others need it recorded.
    bool ready(const Job& j) const { return first(j) || fs::exists(orders_path(j.seed)); }
    bool first(const Job& j) const { return j.v->spec == p_.variants.front().spec; }
    std::vector<int64_t> pick_round(const std::vector<Job>& jobs) const;
    Outcome train_one(const Job& j);
    bool train_run(const Job& j);  // true when it finished (done.json written)

    const SweepPlan& p_;
    mutable std::vector<std::string> redone_;  // --overwrite: runs announced as trained again
    int64_t trained_ = 0;                      // over all ranks
    int stop_signal_ = 0;
};

// Rank 0: the first pending jobs that can start (at most one per rank and the
// run budget); [] when nothing is pending, [-1] when the budget is spent.
std::vector<int64_t> Sweep::pick_round(const std::vector<Job>& jobs) const {
    int64_t slots = dist::world();
    if (p_.max_runs >= 0) slots = std::min(slots, p_.max_runs - trained_);
    std::vector<int64_t> picks;
    const Job* blocked = nullptr;
    for (size_t i = 0; i < jobs.size(); ++i) {
        if (finished(jobs[i]) && reusable(jobs[i])) continue;
        if (slots <= 0) return {-1};
        if (!ready(jobs[i])) {
            if (!blocked) blocked = &jobs[i];
            continue;
        }
        if (static_cast<int64_t>(picks.size()) < slots) picks.push_back(static_cast<int64_t>(i));
    }
    if (picks.empty() && blocked)
        throw Error(fmt::format("tapegrad: sweep: '{}' is missing: variant '{}' runs before the others "
                                "at seed {} and writes it",
                                orders_path(blocked->seed), p_.variants.front().spec, blocked->seed));
    return picks;
}

TrainOptions Sweep::options(const Job& j, const std::string& dir) const {
    const SweepVariant& v = *j.v;
    TrainOptions o = p_.base;
    v.apply(o);
    o.lr = j.lr;
    o.seed = j.seed;
    o.out_dir = dir;
    o.save_path.clear();
    o.resume_path.clear();
    return o;
}

bool Sweep::reusable(const Job& j) const {
    std::string dir = run_dir(p_.out_dir, *j.v, j.lr, j.seed);
    const std::string path = dir + "/done.json";
    json done;
    try {
        done = json::parse(read_file(path, "sweep"));
    } catch (const json::exception& e) {
        throw Error("tapegrad: sweep: '" + path + "' is not valid JSON: " + e.what() +
                    "; remove the run's folder to train it again");
    }
    std::string diff = configuration_diff(done.value("configuration", json()),
                                          run_configuration(options(j, dir)), "finished run", "this sweep");
    if (diff.empty()) return true;
    if (!p_.base.overwrite)
        throw Error(fmt::format("tapegrad: sweep: '{}' is a finished run made with other settings: {}; pass "
                                "--overwrite to train such runs again, or choose another --out",
                                dir, diff));
    if (std::find(redone_.begin(), redone_.end(), dir) == redone_.end()) {
        fmt::print("sweep: {}: trained again (--overwrite): {}\n", dir, diff);
        redone_.push_back(dir);
    }
    return false;
}

bool Sweep::train_run(const Job& j) {
    const SweepVariant& v = *j.v;
    std::string dir = run_dir(p_.out_dir, v, j.lr, j.seed);
    // The run's folder is locked before it is cleared: a live process writing
    // there (a `train --out` into it, say) is refused, never wiped.
    FolderLock run_lock(dir, "sweep run");
    std::vector<fs::path> partial;  // a killed run's files: start it again
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename() != FolderLock::kFileName) partial.push_back(e.path());
    for (const auto& f : partial) fs::remove_all(f);
    TrainOptions o = options(j, dir);
    // The first variant draws and records the seed's batch order; the others replay it.
    std::vector<std::vector<int64_t>> orders;
    if (first(j))
        o.record_orders = &orders;
    else {
        orders = read_orders_json(read_file(orders_path(j.seed), "sweep"), orders_path(j.seed));
        o.replay_orders = &orders;
    }
    TrainResult res = train_model(o);
    if (res.stopped_by == "SIGINT" || res.stopped_by == "SIGTERM") return false;  // no done.json
    write_summary(dir, o, res);
    if (first(j)) {
        fs::create_directories(p_.out_dir + "/orders");
        write_json_file(orders_path(j.seed), json(orders), -1);
    }
    json done = to_json(describe_run(v, j.lr, j.seed, res, dir));
    done["configuration"] = run_configuration(o);  // what made it: a rerun reuses it only if equal
    write_json_file(dir + "/done.json", done);
    return true;
}

// One run as a world of one. With one process an error goes on as it is; under
// mpirun it becomes the round's outcome, which every rank learns.
Outcome Sweep::train_one(const Job& j) {
    Outcome out;
    try {
        dist::SoloScope solo;
        out.trained = train_run(j);
        out.signal = train::stop_signal();
    } catch (const Diverged& d) {
        if (dist::world() == 1) throw;
        out.error = d.message;
    } catch (const std::exception& e) {
        if (dist::world() == 1) throw;
        out.error = e.what();
    }
    return out;
}

bool Sweep::run_all(const std::vector<Job>& jobs) {
    const int world = dist::world(), rank = dist::rank();
    for (;;) {
        std::string msg;
        if (dist::is_root()) try {
                msg = json_text(json(pick_round(jobs)), "the sweep's round");
            } catch (const std::exception& e) {
                if (world == 1) throw;
                msg = json_text(json(std::string(e.what())), "the sweep's message");  // every rank raises it
            }
        dist::broadcast(msg);
        json round = json::parse(msg);
        if (round.is_string()) throw Error(round.get<std::string>());
        std::vector<int64_t> picks = round.get<std::vector<int64_t>>();
        if (picks.empty()) return true;
        if (picks.front() < 0) return false;
        for (size_t r = 0; r < picks.size(); ++r) {
            const Job& j = jobs[static_cast<size_t>(picks[r])];
            fmt::print("== sweep: {} lr {:g} seed {}{} ==\n", j.v->spec, j.lr, j.seed,
                       world > 1 ? fmt::format(" (rank {})", r) : "");
        }
        std::fflush(stdout);
        Outcome mine;
        {
            // A run that stops or fails tells the other ranks at once: theirs stop
            // after their current step (as on SIGTERM) instead of running to the end.
            dist::StopNotices notices;
            if (static_cast<size_t>(rank) < picks.size()) {
                set_stop_source([&notices] { return notices.poll(); });
                try {
                    mine = train_one(jobs[static_cast<size_t>(picks[static_cast<size_t>(rank)])]);
                } catch (...) {
                    set_stop_source(nullptr);
                    throw;
                }
                set_stop_source(nullptr);
            }
            mine.signal = std::max(mine.signal, train::stop_signal());  // also an idle rank's
            if (mine.signal != 0 || !mine.error.empty())
                notices.send(mine.error.empty() ? mine.signal : SIGTERM);
            double senders = notices.sent() ? 1 : 0;
            dist::allreduce_sum(&senders, 1);
            notices.drain(static_cast<int>(senders));
        }
        // The round's verdict, the same on every rank: runs finished, the stop
        // signal, and the message of a failed run (the highest failing rank's).
        double done = mine.trained ? 1 : 0;
        dist::allreduce_sum(&done, 1);
        trained_ += static_cast<int64_t>(done);
        int failed = 0;                                            // 1 + the failing rank
        if (dist::any(mine.signal != 0 || !mine.error.empty())) {  // rare: then which signal, which rank
            stop_signal_ = static_cast<int>(dist::allreduce_max(mine.signal));
            failed = static_cast<int>(dist::allreduce_max(mine.error.empty() ? 0 : rank + 1));
        }
        if (dist::is_root()) write_summary_csv(p_.out_dir);
        if (failed > 0) {
            dist::broadcast(mine.error, failed - 1);
            throw Error(world > 1
                            ? fmt::format("{} (a sweep run on rank {}; the sweep stopped, finished runs "
                                          "are kept)",
                                          mine.error, failed - 1)
                            : mine.error);
        }
        if (stop_signal_ != 0) return false;
    }
}

}  // namespace

std::string SweepVariant::folder() const {
    std::string f = spec;
    std::replace(f.begin(), f.end(), ':', '+');
    return f;
}

namespace {
[[noreturn]] void refuse_value(const std::string& spec, const std::string& key, const std::string& val,
                              const char* expect) {
    throw Error("tapegrad: sweep: variant '" + spec + "': " + key + " needs " + expect + ", not '" + val + "'");
}

// The value of key=VAL as a number, or a refusal naming the spec and what is expected.
double variant_number(const std::string& spec, const std::string& key, const std::string& val,
                      const char* expect, bool integer) {
    size_t n = 0;
    double x = NAN;
    try {
        x = integer ? static_cast<double>(std::stoll(val, &n)) : std::stod(val, &n);
    } catch (const std::exception&) {
        n = 0;
    }
    if (n == 0 || n != val.size() || !std::isfinite(x))
        throw Error("tapegrad: sweep: variant '" + spec + "': " + key + " needs " + expect + ", not '" + val +
                    "'");
    return x;
}

// The variant's traits (nn::AttentionTraits); a name nothing registered has no
// capability (and is refused by name when the run builds its model).
const nn::AttentionTraits& traits_of(const std::string& attention) {
    static const nn::AttentionTraits none;
    const nn::AttentionTraits* t = nn::find_attention_traits(attention);
    return t ? *t : none;
}

// key needs query/key factors (qk_factors), or a product init (product_of).
void need_factors(const SweepVariant& v, const std::string& key, const char* why) {
    if (!traits_of(v.attention).qk_factors)
        throw Error("tapegrad: sweep: variant '" + v.spec + "': " + key + " " + why + "; '" + v.attention +
                    "' has no such factors");
}
void need_product(const SweepVariant& v, const std::string& key, const char* why) {
    if (traits_of(v.attention).product_of.empty())
        throw Error("tapegrad: sweep: variant '" + v.spec + "': " + key + " " + why + "; '" + v.attention +
                    "' has no such form");
}
}  // namespace

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
            double r = variant_number(spec, key, val, "an integer >= 1", true);
            if (r < 1) refuse_value(spec, key, val, "an integer >= 1");
            need_factors(v, key, "is the query/key width of mha");
            v.qk_dim = static_cast<int64_t>(r);
        } else if (key == "init" && val == "product") {
            need_product(v, key, "builds alt1's S_h from factors");
            v.init = val;
        } else if (key == "init-gain") {
            double g = variant_number(spec, key, val, "a number > 0", false);
            if (!(g > 0)) refuse_value(spec, key, val, "a number > 0");
            need_factors(v, key, "scales mha's W_query and W_key");
            v.init_gain = static_cast<float>(g);
        } else if (key == "scores" && val == "zero") {
            need_factors(v, key, "removes mha's query and key");
            v.uniform = true;
        } else if (key == "wd") {
            double wd = variant_number(spec, key, val, "a number >= 0", false);
            if (wd < 0) refuse_value(spec, key, val, "a number >= 0");
            v.weight_decay = wd;
        } else if (key == "eval-seeds") {
            double n = variant_number(spec, key, val, "an integer >= 1", true);
            if (n < 1) refuse_value(spec, key, val, "an integer >= 1");
            v.eval_seeds = static_cast<int64_t>(n);
        } else if (key == "lr-from" && !val.empty()) {
            v.lr_from = val;
        } else if (key == "name" && !val.empty() && val.find_first_of("/ ,+") == std::string::npos) {
            v.name = val;
        } else {
            throw Error("tapegrad: sweep: variant '" + spec + "': '" + opt +
                        "' is not understood (known: out-proj=on|off, qk-dim=R and init-gain=G and "
                        "scores=zero for mha, init=product for alt1, wd=X, eval-seeds=N, lr-from=NAME, "
                        "name=NAME)");
        }
    }
    if (v.uniform && (v.qk_dim || v.init_gain != 1.0f))
        throw Error("tapegrad: sweep: variant '" + spec + "': scores=zero has no query or key to size or scale");
    return v;
}

void SweepVariant::apply(TrainOptions& o) const {
    o.config.attention = attention;
    if (out_proj) o.config.out_proj = *out_proj;
    if (qk_dim) o.config.qk_dim = *qk_dim;
    o.config.init = init;
    o.config.init_gain = init_gain;
    o.config.uniform_attention = uniform;
    if (weight_decay) o.weight_decay = *weight_decay;
}

std::string lr_folder(double lr) { return fmt::format("lr{:.0e}", lr); }

std::string run_dir(const std::string& out, const SweepVariant& v, double lr, uint64_t seed) {
    return fmt::format("{}/runs/{}/{}/seed{}", out, v.folder(), lr_folder(lr), seed);
}

namespace {

json parse_state(const std::string& text, const std::string& path) {
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        throw Error("tapegrad: sweep: '" + path + "' is not valid JSON: " + e.what());
    }
}

}  // namespace

SweepRun read_done_json(const std::string& text, const std::string& path, const std::string& dir) {
    try {
        return from_json(parse_state(text, path), dir);
    } catch (const json::exception& e) {
        throw Error("tapegrad: sweep: '" + path + "' is not a finished run's record (" + e.what() +
                    "); remove the run's folder to train it again");
    }
}

std::vector<std::vector<int64_t>> read_orders_json(const std::string& text, const std::string& path) {
    try {
        return parse_state(text, path).get<std::vector<std::vector<int64_t>>>();
    } catch (const json::exception& e) {
        throw Error("tapegrad: sweep: '" + path + "' is not a batch order record (" + e.what() + ")");
    }
}

std::vector<SweepRun> finished_runs(const std::string& out_dir) {
    std::vector<SweepRun> runs;
    if (!fs::is_directory(out_dir + "/runs")) return runs;
    for (auto& e : fs::recursive_directory_iterator(out_dir + "/runs"))
        if (e.is_regular_file() && e.path().filename() == "done.json")
            runs.push_back(read_done_json(read_file(e.path().string(), "sweep"), e.path().string(),
                                          e.path().parent_path().string()));
    std::sort(runs.begin(), runs.end(), [](const SweepRun& a, const SweepRun& b) {
        return std::tie(a.variant, a.lr, a.seed) < std::tie(b.variant, b.lr, b.seed);
    });
    return runs;
}

double selection_loss(const SweepRun& r) {
    return std::isfinite(r.full_val_loss) ? r.full_val_loss : r.final_val_loss;
}

namespace {
// Mean selection_loss of v at lr over the selection seeds; nullopt when a run
// is missing, +inf when one diverged (NaN).
std::optional<double> selection_mean(const SweepPlan& plan, const std::string& spec, double lr,
                                     const std::vector<SweepRun>& runs) {
    double sum = 0;
    size_t n = 0;
    for (const SweepRun& r : runs)
        if (r.variant == spec && r.lr == lr &&
            std::count(plan.selection_seeds.begin(), plan.selection_seeds.end(), r.seed)) {
            double l = selection_loss(r);
            sum += std::isfinite(l) ? l : INFINITY;
            n++;
        }
    if (n != plan.selection_seeds.size()) return std::nullopt;
    return sum / static_cast<double>(n);
}

// The best lr of a grid, or nullopt while a run is missing.
std::optional<double> best_lr(const SweepPlan& plan, const std::string& spec, const std::vector<double>& grid,
                              const std::vector<SweepRun>& runs) {
    double best = INFINITY, lr_best = grid.front();
    for (double lr : grid) {
        std::optional<double> m = selection_mean(plan, spec, lr, runs);
        if (!m) return std::nullopt;
        if (*m < best) {
            best = *m;
            lr_best = lr;
        }
    }
    return lr_best;
}
}  // namespace

std::vector<double> variant_grid(const SweepPlan& plan, const SweepVariant& v,
                                 const std::vector<SweepRun>& runs) {
    std::vector<double> grid = plan.lrs;
    std::sort(grid.begin(), grid.end());
    if (!plan.extend_lrs) return grid;
    for (int ext = 0; ext < plan.max_extensions; ++ext) {
        std::optional<double> best = best_lr(plan, v.spec, grid, runs);
        if (!best) return grid;
        if (*best == grid.front())
            grid.insert(grid.begin(), grid.front() / 2);
        else if (*best == grid.back() && grid.size() > 1)
            grid.push_back(grid.back() * 2);
        else
            return grid;
    }
    return grid;
}

std::vector<std::pair<std::string, double>> chosen_lrs(const SweepPlan& plan,
                                                       const std::vector<SweepRun>& runs) {
    std::map<std::string, double> by_label;
    for (const SweepVariant& v : plan.variants) {
        if (!v.selected()) continue;
        std::vector<double> grid = variant_grid(plan, v, runs);
        std::optional<double> best = best_lr(plan, v.spec, grid, runs);
        if (!best) return {};  // not all selection runs finished
        by_label[v.label()] = *best;
    }
    std::vector<std::pair<std::string, double>> out;
    for (const SweepVariant& v : plan.variants) {
        auto it = by_label.find(v.selected() ? v.label() : v.lr_from);
        if (it == by_label.end())
            throw Error("tapegrad: sweep: variant '" + v.spec + "' takes its lr from '" + v.lr_from +
                        "', which is no selected variant's name");
        out.emplace_back(v.spec, it->second);
    }
    return out;
}

std::vector<uint64_t> variant_eval_seeds(const SweepPlan& plan, const SweepVariant& v) {
    std::vector<uint64_t> seeds = plan.eval_seeds.empty() ? plan.selection_seeds : plan.eval_seeds;
    if (v.eval_seeds && static_cast<size_t>(*v.eval_seeds) < seeds.size())
        seeds.resize(static_cast<size_t>(*v.eval_seeds));
    return seeds;
}

int64_t run_sweep(const SweepPlan& p, int* stop_signal) {
    if (p.variants.empty() || p.lrs.empty() || p.selection_seeds.empty())
        throw Error("tapegrad: sweep: needs at least one variant, one --lrs value and one --seeds value");
    const SweepVariant& lead = p.variants.front();
    if (!lead.selected() || lead.eval_seeds)
        throw Error("tapegrad: sweep: the first variant ('" + lead.spec +
                    "') draws every seed's batch order, so it must run at every seed: it cannot take "
                    "lr-from or eval-seeds (list another variant first)");
    // One sweep per folder: rank 0 locks OUT for all ranks and says so; a
    // refusal ends every rank with the same message (a killed sweep's lock
    // went with its process: a rerun resumes).
    std::optional<FolderLock> lock;
    std::string refused;
    if (dist::is_root()) try {
            lock.emplace(p.out_dir, "sweep --out");
        } catch (const std::exception& e) {
            if (dist::world() == 1) throw;
            refused = e.what();
        }
    dist::broadcast(refused);
    if (!refused.empty()) throw Error(refused);
    Sweep sweep(p);
    auto ended = [&] {
        if (stop_signal) *stop_signal = sweep.stop_signal();
        return sweep.trained();
    };
    // Selection: for each lr and seed the first variant runs first (it writes the
    // order). With extend_lrs the grids grow from the finished runs; rank 0
    // derives them and every rank builds the same job list from its message.
    std::vector<Job> jobs;
    std::vector<std::vector<double>> grids(p.variants.size());
    for (int pass = 0;; ++pass) {
        std::string msg;
        if (dist::is_root()) {
            std::vector<SweepRun> runs = finished_runs(p.out_dir);
            for (const SweepVariant& v : p.variants) {
                if (v.selected())
                    for (double lr : variant_grid(p, v, runs)) msg += fmt::format("{:a} ", lr);
                msg += "; ";
            }
        }
        dist::broadcast(msg);
        std::vector<std::vector<double>> now(p.variants.size());
        std::istringstream is(msg);
        for (size_t i = 0; i < p.variants.size(); ++i)
            for (std::string w; is >> w && w != ";";) now[i].push_back(std::strtod(w.c_str(), nullptr));
        if (pass > 0 && now == grids) break;
        grids = now;
        std::vector<double> all;
        for (auto& g : grids) all.insert(all.end(), g.begin(), g.end());
        std::sort(all.begin(), all.end());
        all.erase(std::unique(all.begin(), all.end()), all.end());
        jobs.clear();
        for (double lr : all)
            for (uint64_t seed : p.selection_seeds)
                for (size_t i = 0; i < p.variants.size(); ++i)
                    if (std::count(grids[i].begin(), grids[i].end(), lr)) jobs.push_back({&p.variants[i], lr, seed});
        if (!sweep.run_all(jobs)) return ended();
    }
    // Rank 0 reads the selection runs and tells every rank the chosen lrs.
    // Exact as hex floats (a NaN lr, every selection run diverged, included).
    std::string chosen_msg, msg_word;
    if (dist::is_root())
        for (const auto& [spec, lr] : chosen_lrs(p, finished_runs(p.out_dir)))
            chosen_msg += fmt::format("{:a} ", lr);
    dist::broadcast(chosen_msg);
    std::vector<double> chosen;
    for (std::istringstream is(chosen_msg); is >> msg_word;)
        chosen.push_back(std::strtod(msg_word.c_str(), nullptr));
    if (chosen.size() != p.variants.size())
        throw Error("tapegrad: sweep: the selection runs are incomplete: no learning rate chosen");
    jobs.clear();
    const std::vector<uint64_t> eval_seeds = variant_eval_seeds(p, SweepVariant{});
    for (uint64_t seed : eval_seeds)
        for (size_t i = 0; i < p.variants.size(); ++i) {
            std::vector<uint64_t> mine = variant_eval_seeds(p, p.variants[i]);
            if (std::count(mine.begin(), mine.end(), seed)) jobs.push_back({&p.variants[i], chosen[i], seed});
        }
    if (!sweep.run_all(jobs)) return ended();
    if (dist::is_root()) fmt::print("{}\n", write_sweep_report(p));
    return ended();
}

}  // namespace tg::train
