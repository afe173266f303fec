// The whole run (issue 17, parts 2 and 3), through the executable on the tiny
// preset: the default thread count (OMP_NUM_THREADS, else the affinity mask)
// reported in the header and summary.json; 1, 2 and 3 threads giving the same
// bits; the wall-time breakdown of train and compare (every part present, >= 0,
// summing to the measured total); and the evaluation forward recording no tape.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <sched.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_run.h"
#include "core/storage.h"
#include "core/tape.h"
#include "models/gpt.h"
#include "models/safetensors.h"
#include "test_util.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using tg::test::run;

namespace {

std::string tmp(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("tapegrad_whole_" + std::to_string(::getpid())) / name;
    fs::create_directories(d);  // --save's folder must exist
    return d.string();
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

json read_json(const std::string& path) { return json::parse(slurp(path)); }

// A short run of the tiny preset (64 wide, 2 layers, GPT-2's vocabulary: the
// logits, the output GEMM and AdamW over the embedding are large enough to be
// split over threads), shuffled, dropout on.
const std::string kTiny = "--preset tiny --max-steps 6 --eval-freq 3 --eval-iter 2 ";

// metrics.csv without the elapsed_s column (wall time differs run to run).
std::vector<std::string> metrics_rows(const std::string& path) {
    std::vector<std::string> rows;
    std::istringstream in(slurp(path));
    for (std::string line; std::getline(in, line);) {
        std::vector<std::string> cells;
        std::stringstream ss(line);
        for (std::string c; std::getline(ss, c, ',');) cells.push_back(c);
        REQUIRE(cells.size() >= 7);
        cells.erase(cells.begin() + 6);  // elapsed_s
        std::string joined;
        for (auto& c : cells) joined += c + ",";
        rows.push_back(joined);
    }
    return rows;
}

// The parts of a wall_time_s object: each present and >= 0, their sum within 5%
// of the separately measured total (plus 20 ms for a run this short).
void check_breakdown(const json& w, const std::vector<std::string>& positive) {
    INFO(w.dump());
    double sum = 0;
    for (const char* k :
         {"startup", "steps", "eval", "samples", "probe", "checkpoints", "metrics", "report"}) {
        REQUIRE(w.contains(k));
        CHECK(w[k].get<double>() >= 0);
        sum += w[k].get<double>();
    }
    for (auto& k : positive) CHECK(w[k].get<double>() > 0);
    double total = w.at("total").get<double>();
    CHECK(total > 0);
    CHECK(std::abs(total - sum) <= 0.05 * total + 0.02);
    CHECK(w.at("unaccounted").get<double>() == Approx(total - sum).margin(1e-9));
}

// A command line run by the shell as written (prefixes such as `env` or
// `taskset`), stdout and stderr merged.
tg::test::CliResult run_shell(const std::string& cmd) {
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    REQUIRE(p);
    std::string text;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, n);
    return {tg::test::exit_code(pclose(p)), text};
}

int affinity_count() {
    cpu_set_t set;
    CPU_ZERO(&set);
    REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
    return CPU_COUNT(&set);
}

}  // namespace

// Every GEMM is cut into tiles by its shape alone and each tile computed
// single-threaded (core/blas.h); tapegrad's own loops compute each element by
// the same code on any thread count. So the thread count changes no bit.
TEST_CASE("train: 1, 2 and 3 threads give bit-identical losses, metrics and final weights (tiny preset)",
          "[cli][threads-identity]") {
    for (std::string att : {"mha", "alt1"}) {
        std::vector<std::vector<std::string>> rows;
        std::vector<tg::models::SafeTensors> ckpts;
        for (int n : {1, 2, 3}) {
            std::string out = tmp("threads_" + att + std::to_string(n));
            auto r = run("train " + kTiny + "--attention " + att + " --quiet --overwrite --threads " +
                         std::to_string(n) + " --out " + out + " --save " + out + "/model.safetensors");
            INFO(r.text);
            REQUIRE(r.code == 0);
            CHECK(read_json(out + "/summary.json").at("threads").get<int>() == n);
            rows.push_back(metrics_rows(out + "/metrics.csv"));
            ckpts.push_back(tg::models::read_safetensors(out + "/model.safetensors"));
        }
        REQUIRE(rows[0].size() == 7);  // header + 6 steps
        for (int k : {1, 2}) {
            INFO(att << " with " << k + 1 << " threads");
            CHECK(rows[k] == rows[0]);
            REQUIRE(ckpts[k].f32.size() == ckpts[0].f32.size());
            for (size_t i = 0; i < ckpts[0].f32.size(); ++i) {  // weights and AdamW's moments
                const auto& [name, a] = ckpts[0].f32[i];
                const auto& b = ckpts[k].f32[i].second;
                INFO(name);
                REQUIRE(a.numel() == b.numel());
                CHECK(std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<size_t>(a.numel())) == 0);
            }
        }
    }
    fs::remove_all(fs::path(tmp("x")).parent_path());
}

TEST_CASE("the default thread count: OMP_NUM_THREADS when set, else the affinity mask, in header and summary",
          "[cli][threads]") {
    std::string out = tmp("default_threads");
    // Through the shell, with the environment and the affinity mask set for the one process.
    auto threads_of = [&](const std::string& prefix, const std::string& flags) {
        auto r = run_shell(prefix + " " + TAPEGRAD_BIN + " train --preset tiny --max-steps 1 --eval-freq 0 " +
                           "--overwrite --out " + out + " " + flags);
        INFO(r.text);
        REQUIRE(r.code == 0);
        int n = read_json(out + "/summary.json").at("threads").get<int>();
        if (flags.find("--quiet") == std::string::npos)  // the run header says it too
            CHECK_THAT(r.text, Catch::Contains(fmt::format("({} threads)", n)));
        return n;
    };
    CHECK(threads_of("env -u OMP_NUM_THREADS", "") == affinity_count());
    CHECK(threads_of("env OMP_NUM_THREADS=3", "") == 3);
    CHECK(threads_of("env OMP_NUM_THREADS=3", "--threads 1 --quiet") == 1);  // the flag wins
    CHECK(threads_of("env -u OMP_NUM_THREADS taskset -c 0", "") == 1);       // a narrowed mask
    fs::remove_all(fs::path(tmp("x")).parent_path());
}

// libgomp reads its wait policy once, before main; tapegrad sets passive and
// execs itself once when the user set no policy (core/blas.h). What libgomp
// itself read shows in OMP_DISPLAY_ENV=verbose, printed as it loads (by both
// images when tapegrad re-executes): passive waiting means a spin count of 0.
TEST_CASE("the OpenMP wait policy: passive by default, the user's setting wins, as libgomp reads it",
          "[cli][threads]") {
    std::string out = tmp("wait_policy");
    auto policy_of = [&](const std::string& env) {
        auto r = run_shell(
            "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose " + env + " " + TAPEGRAD_BIN +
            " train --preset tiny --max-steps 1 --eval-freq 0 --quiet --overwrite --out " + out);
        INFO(r.text);
        REQUIRE(r.code == 0);
        return std::make_pair(read_json(out + "/summary.json").at("omp_wait_policy").get<std::string>(),
                              r.text);
    };
    auto [def, def_text] = policy_of("");
    CHECK(def == "OMP_WAIT_POLICY=passive");
    CHECK_THAT(def_text, Catch::Contains("GOMP_SPINCOUNT = '0'"));
    auto [act, act_text] = policy_of("OMP_WAIT_POLICY=active");
    CHECK(act == "OMP_WAIT_POLICY=active");
    CHECK_THAT(act_text, Catch::Contains("OMP_WAIT_POLICY = 'ACTIVE'"));
    CHECK_THAT(act_text, !Catch::Contains("GOMP_SPINCOUNT = '0'"));
    auto [spin, spin_text] = policy_of("GOMP_SPINCOUNT=10000");
    CHECK(spin == "GOMP_SPINCOUNT=10000");
    CHECK_THAT(spin_text, Catch::Contains("GOMP_SPINCOUNT = '10000'"));
    CHECK_THAT(spin_text, !Catch::Contains("GOMP_SPINCOUNT = '0'"));
    fs::remove_all(fs::path(tmp("x")).parent_path());
}

TEST_CASE("train prints and records the wall-time breakdown: every part, >= 0, summing to the total",
          "[cli][wall]") {
    std::string out = tmp("wall_train");
    // Every part switched on: evaluations, a sample (an epoch ends: --epochs 1
    // without --max-steps), the probe, periodic checkpoints.
    auto r = run("train --preset tiny --epochs 1 --batch-size 8 --eval-freq 3 --eval-iter 2 --probe-every 4 "
                 "--save-every 4 "
                 "--quiet --overwrite --out " +
                 out + " --save " + out + "/model.safetensors");
    INFO(r.text);
    REQUIRE(r.code == 0);
    for (const char* part : {"wall time:", "startup", "steps", "eval", "samples", "probe", "checkpoints",
                             "metrics", "report", "unaccounted"})
        CHECK_THAT(r.text, Catch::Contains(part));
    check_breakdown(read_json(out + "/summary.json").at("wall_time_s"),
                    {"startup", "steps", "eval", "samples", "probe", "checkpoints", "metrics"});
    fs::remove_all(fs::path(tmp("x")).parent_path());
}

TEST_CASE(
    "compare prints and records the breakdown of each variant and of the whole command, report included",
    "[cli][wall]") {
    std::string out = tmp("wall_compare");
    auto r = run("compare " + kTiny + "--probe-every 0 --quiet --overwrite --out " + out);
    INFO(r.text);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.text, Catch::Contains("mha wall time:") && Catch::Contains("alt1 wall time:") &&
                           Catch::Contains("compare wall time:"));
    json w = read_json(out + "/wall_time.json");
    for (const char* v : {"mha", "alt1"}) {
        check_breakdown(w.at(v), {"startup", "steps", "eval"});
        CHECK(read_json(out + "/" + v + "/summary.json").at("wall_time_s") == w.at(v));
    }
    check_breakdown(w.at("compare"), {"startup", "steps", "eval", "report"});
    CHECK(w["compare"]["total"].get<double>() >
          w["mha"]["total"].get<double>() + w["alt1"]["total"].get<double>());
    fs::remove_all(fs::path(tmp("x")).parent_path());
}

// The evaluation forward (train/observers/standard.cpp: model.eval() and NoGradGuard):
// nothing goes on the tape, no tensor outlives it but the loss, and once the
// pool is warm a second evaluation takes no fresh buffer.
TEST_CASE("evaluation forward: no tape entries, nothing saved, buffers reused", "[train][wall]") {
    using namespace tg;
    models::GPTConfig cfg = models::preset("tiny");
    manual_seed(123);
    models::GPTModel model(cfg);
    Ids ids{{2, 64}, std::vector<int64_t>(128)}, tgt = ids;
    for (int64_t i = 0; i < 128; ++i) {
        ids.data[i] = (i * 7919) % cfg.vocab_size;
        tgt.data[i] = (i * 104729 + 1) % cfg.vocab_size;
    }
    tape().clear();
    {  // the training forward records: the checks below can fail
        Tensor loss = cross_entropy(model.forward(ids), tgt);
        CHECK(tape().size() > 10);
        tape().clear();
    }
    model.eval();
    auto eval_loss = [&] {
        NoGradGuard ng;
        return cross_entropy(model.forward(ids), tgt).item();
    };
    size_t live0 = pool_stats().bytes_live;
    double first = eval_loss();
    CHECK(tape().size() == 0);
    CHECK(pool_stats().bytes_live == live0);  // no activation kept for a backward
    size_t fresh = pool_stats().fresh_allocations;
    double second = eval_loss();
    CHECK(second == first);
    CHECK(pool_stats().fresh_allocations == fresh);
    CHECK(tape().size() == 0);
}
