// tapegrad sweep: runs resume after a kill (a killed run is trained again, never
// counted as finished), every variant of a seed trains on the same batches, the
// lr is chosen on the selection seeds, and summary.csv / report.md come out.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "test_util.h"
#include "train/io/csv.h"
#include "train/study/stats.h"
#include "train/study/sweep.h"
#include "train/report/sweep_report.h"
#include "train_test_util.h"

using namespace tg;
using namespace tg::train;
namespace fs = std::filesystem;

namespace {

SweepPlan tiny_plan(const std::string& out) {
    SweepPlan p;
    TrainOptions& o = p.base;
    o = test::tiny_run();
    o.max_steps = 3;
    o.eval_freq = 1;
    o.eval_iter = 1;
    o.sample_tokens = 1;
    o.probe_every = 2;
    p.variants = {parse_variant("mha"), parse_variant("alt1")};
    p.lrs = {4e-4, 1e-3};
    p.selection_seeds = {1};
    p.eval_seeds = {2};
    p.out_dir = out;
    return p;
}

}  // namespace

TEST_CASE("sweep variants parse, and a bad one is refused naming it", "[sweep]") {
    SweepVariant v = parse_variant("alt1:out-proj=on");
    CHECK(v.attention == "alt1");
    CHECK(v.out_proj == std::optional<bool>(true));
    CHECK(v.folder() == "alt1+out-proj=on");
    CHECK(parse_variant("mha").out_proj == std::nullopt);
    CHECK_THROWS_WITH(parse_variant("mha:qk=3"), Catch::Contains("mha:qk=3") && Catch::Contains("qk=3"));
    CHECK_THROWS_WITH(parse_variant(":out-proj=on"), Catch::Contains("no attention name"));
    SweepVariant q = parse_variant("mha:qk-dim=768:out-proj=off");
    CHECK(q.qk_dim == std::optional<int64_t>(768));
    CHECK(q.out_proj == std::optional<bool>(false));
    CHECK(q.folder() == "mha+qk-dim=768+out-proj=off");
    CHECK_THROWS_WITH(parse_variant("alt1:qk-dim=64"),
                      Catch::Contains("qk-dim is the query/key width of mha"));
    CHECK_THROWS_WITH(parse_variant("mha:qk-dim=0"),
                      Catch::Contains("qk-dim needs an integer >= 1, not '0'"));
    CHECK_THROWS_WITH(parse_variant("mha:qk-dim=8x"), Catch::Contains("not '8x'"));
}

TEST_CASE("the lr is chosen by the mean final val loss on the selection seeds only", "[sweep]") {
    SweepPlan p = tiny_plan("unused");
    p.selection_seeds = {1, 2};
    auto run = [](const std::string& v, double lr, uint64_t seed, double val) {
        SweepRun r;
        r.variant = v;
        r.lr = lr;
        r.seed = seed;
        r.final_val_loss = val;
        return r;
    };
    // mha: lr 4e-4 mean 5.0, lr 1e-3 mean 5.5 -> 4e-4. alt1: 6.0 vs 5.9 -> 1e-3.
    // Seed 3 is not a selection seed: its very low loss must not move the choice.
    std::vector<SweepRun> runs = {
        run("mha", 4e-4, 1, 4.9),  run("mha", 4e-4, 2, 5.1),  run("mha", 1e-3, 1, 5.4),
        run("mha", 1e-3, 2, 5.6),  run("mha", 1e-3, 3, 0.1),  run("alt1", 4e-4, 1, 6.0),
        run("alt1", 4e-4, 2, 6.0), run("alt1", 1e-3, 1, 5.8), run("alt1", 1e-3, 2, 6.0)};
    auto chosen = chosen_lrs(p, runs);
    REQUIRE(chosen.size() == 2);
    CHECK(chosen[0] == std::make_pair(std::string("mha"), 4e-4));
    CHECK(chosen[1] == std::make_pair(std::string("alt1"), 1e-3));
    runs.pop_back();  // a selection run missing: no choice yet
    CHECK(chosen_lrs(p, runs).empty());
}

TEST_CASE("a killed sweep continues: finished runs are skipped, a partial run is trained again", "[sweep]") {
    fs::path out = fs::temp_directory_path() / ("tapegrad_sweep_" + std::to_string(::getpid()));
    fs::remove_all(out);
    SweepPlan p = tiny_plan(out.string());
    // 2 variants x 2 lrs x seed 1, then 2 variants x seed 2 at the chosen lrs: 6 runs.
    p.max_runs = 3;  // as if the process died after three runs
    CHECK(run_sweep(p) == 3);
    CHECK(finished_runs(p.out_dir).size() == 3);
    CHECK_FALSE(fs::exists(out / "report.md"));
    // The fourth run was killed mid-way: a folder with a metrics.csv but no done.json.
    std::string killed = run_dir(p.out_dir, p.variants[1], 1e-3, 1);
    fs::create_directories(killed);
    std::ofstream(killed + "/metrics.csv") << "epoch,step\n1,0\n";
    CHECK(finished_runs(p.out_dir).size() == 3);  // never counted as finished

    p.max_runs = -1;
    CHECK(run_sweep(p) == 3);
    auto runs = finished_runs(p.out_dir);
    CHECK(runs.size() == 6);
    Csv m = read_csv(killed + "/metrics.csv");  // trained again from the start: all three steps
    CHECK(m.rows.size() == 3);
    CHECK(fs::exists(out / "report.md"));
    std::ifstream summary(out / "summary.csv");
    std::string line;
    int lines = 0;
    while (std::getline(summary, line)) lines++;
    CHECK(lines == 7);         // header + one row per run
    CHECK(run_sweep(p) == 0);  // all finished: nothing to train

    // Pairing: at seed 1 both variants saw the batches the first variant drew.
    nlohmann::json orders = nlohmann::json::parse(std::ifstream(out / "orders" / "seed1.json"));
    CHECK(orders.size() >= 4);  // the epoch's order and one per evaluation (eval_freq 1, 3 steps)
    std::string report;
    std::getline(std::ifstream(out / "report.md"), report, '\0');
    CHECK(report.find("Paired differences on the same seeds") != std::string::npos);
    // The alt1 - mha row holds the difference of the two eval runs' own losses (one seed).
    auto chosen = chosen_lrs(p, runs);
    auto at = [&](const std::string& v, double lr) {
        for (const SweepRun& r : runs)
            if (r.variant == v && r.lr == lr && r.seed == 2) return r;
        FAIL("no eval run of " << v);
        return runs.front();
    };
    SweepRun rm = at("mha", chosen[0].second), ra = at("alt1", chosen[1].second);
    std::string row =
        fmt::format("| alt1 | mha | {} | {} | {} |",
                    stats::paired_difference({ra.final_val_loss}, {rm.final_val_loss}).str(3),
                    stats::paired_difference({ra.best_val_loss}, {rm.best_val_loss}).str(3),
                    stats::paired_difference({ra.final_train_loss}, {rm.final_train_loss}).str(3));
    INFO(report);
    CHECK(report.find(row) != std::string::npos);
    CHECK(report.find("| mha | alt1 |") == std::string::npos);  // later minus earlier only
    CHECK(report.find("Gradient dynamics across seeds") != std::string::npos);
    CHECK(fs::exists(out / "plots" / "sweep_val_loss.png"));
    fs::remove_all(out);
}

TEST_CASE("the report's paired differences cover every pair of variants, by hand", "[sweep]") {
    // Three variants x seeds 1..3 at one lr, written as finished runs: the pair
    // (alt1, mha:out-proj=off) does not involve the first variant.
    fs::path out = fs::temp_directory_path() / ("tapegrad_sweep_pairs_" + std::to_string(::getpid()));
    fs::remove_all(out);
    SweepPlan p = tiny_plan(out.string());
    p.variants = {parse_variant("mha"), parse_variant("mha:out-proj=off"), parse_variant("alt1")};
    p.lrs = {1e-3};
    p.selection_seeds = {1, 2, 3};
    p.eval_seeds = {};
    std::map<std::string, std::vector<double>> val = {
        {"mha", {5.25, 5.05, 5.15}}, {"mha:out-proj=off", {5.3, 5.4, 5.5}}, {"alt1", {5.0, 5.2, 5.1}}};
    for (const SweepVariant& v : p.variants)
        for (uint64_t s = 1; s <= 3; ++s) {
            std::string dir = run_dir(p.out_dir, v, 1e-3, s);
            fs::create_directories(dir);
            double f = val[v.spec][s - 1];
            std::ofstream(dir + "/metrics.csv") << "step,val_loss\n0,10\n3," << f << "\n";
            nlohmann::json j = {{"variant", v.spec},        {"lr", 1e-3},          {"seed", s},
                                {"num_parameters", 1},      {"steps", 3},          {"tokens_per_second", 1.0},
                                {"seconds", 1.0},           {"final_val_loss", f}, {"best_val_loss", f - 0.1},
                                {"final_train_loss", f - 1}};
            std::ofstream(dir + "/done.json") << j.dump();
            std::ofstream(dir + "/summary.json") << j.dump();  // report.html embeds it
        }
    write_sweep_report(p);
    std::string report;
    std::getline(std::ifstream(out / "report.md"), report, '\0');
    INFO(report);
    // alt1 - mha:out-proj=off = {-0.3, -0.2, -0.4}: mean -0.3, sd 0.1,
    // t(0.975, 2) = 4.303, half-width 4.303 * 0.1 / sqrt(3) = 0.248.
    std::string far = "-0.300 +- 0.100 (95% CI -0.548 .. -0.052, n=3)";
    CHECK(report.find("| alt1 | mha:out-proj=off | " + far + " | " + far + " | " + far + " |") !=
          std::string::npos);
    // alt1 - mha = {-0.25, 0.15, -0.05}: mean -0.05, sd 0.2, half-width 0.497.
    std::string near = "-0.050 +- 0.200 (95% CI -0.547 .. 0.447, n=3)";
    CHECK(report.find("| alt1 | mha | " + near) != std::string::npos);
    CHECK(report.find("| mha:out-proj=off | mha | ") != std::string::npos);
    CHECK(report.find(
              "**alt1** vs **mha:out-proj=off**: final validation loss -0.300 (larger than seed noise") !=
          std::string::npos);
    CHECK(report.find("**alt1** vs **mha**: final validation loss -0.050 (within seed noise") !=
          std::string::npos);
    fs::remove_all(out);
}
