// Data-parallel training under mpirun (issue 14), against the single process.
// Each case drives the tapegrad executable: `mpirun -np 2` (as root, with
// --oversubscribe: CI runs as root on 2 cores) and the plain process, on a
// small model, then compares metrics.csv, dynamics.csv and the checkpoints.
//
// Tolerances. The ranks compute the same numbers as the single process except
// for the order of float sums: each rank's loss is a mean over its rows, the
// gradient a sum of two halves divided by 2, the evaluation losses sums of
// shares. Those reorderings move a float32 result by a few ulps per operation,
// far below 1e-5 after a few steps (the bound for losses, relative for
// weights). With dropout on, the ranks draw the masks the single process draws
// for their rows (core/ops.h DropoutRows), so the masks are identical and the
// same bound holds: no mask differs, only summation order.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli_run.h"
#include "models/checkpoint.h"
#include "test_util.h"
#include "train/io/csv.h"
#include "train/study/sweep.h"

namespace fs = std::filesystem;
using namespace tg;

namespace {

using Out = test::CliResult;

fs::path tmpdir() {
    fs::path d = fs::temp_directory_path() / ("tapegrad_mpi_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
}
std::string tmp(const std::string& name) { return (tmpdir() / name).string(); }

// A 120 s timeout bounds every job: a hang fails the case instead of the whole ctest run.
Out sh(const std::string& cmd) { return test::run_shell(cmd, 120); }

const std::string kMpirun = "mpirun --allow-run-as-root --oversubscribe ";
std::string bin() { return TAPEGRAD_BIN; }
Out single(const std::string& args) { return sh(bin() + " " + args); }
Out ranks(int n, const std::string& args) {
    return sh(kMpirun + "-np " + std::to_string(n) + " " + bin() + " " + args);
}
// `args` as one process into d1, then as 2 ranks into d2 (each with --save into
// its folder when `save`); both must succeed. Returns the ranks' output.
Out one_then_two(const std::string& args, const std::string& d1, const std::string& d2, bool save = false) {
    auto into = [&](const std::string& d) {
        return " --out " + d + (save ? " --save " + d + "/model.safetensors" : "");
    };
    Out a = single(args + into(d1));
    INFO(a.text);
    REQUIRE(a.code == 0);
    Out b = ranks(2, args + into(d2));
    INFO(b.text);
    REQUIRE(b.code == 0);
    return b;
}

// A small GPT, several steps with evaluations, the probe and a checkpoint.
const std::string kRun =
    "train --preset tiny --context-length 32 --eval-freq 2 --eval-iter 2 --quiet --threads 1 ";
const std::string kBatch4 = "--batch-size 4 ";

// Every column in `cols` of two metrics files within `tol` (absolute), row by row.
void same_metrics(const std::string& a, const std::string& b, const std::vector<std::string>& cols,
                  double tol, size_t expect_rows) {
    train::Csv ra = train::read_csv(a), rb = train::read_csv(b);
    REQUIRE(ra.rows.size() == expect_rows);
    REQUIRE(rb.rows.size() == expect_rows);
    for (size_t i = 0; i < ra.rows.size(); ++i)
        for (const auto& c : cols) {
            double x = ra.at(i, c), y = rb.at(i, c);
            INFO("row " << i << " column " << c << ": " << x << " vs " << y);
            CHECK(std::isnan(x) == std::isnan(y));
            if (!std::isnan(x)) CHECK(std::abs(x - y) <= tol);
        }
}

// Every model tensor of two checkpoints: ||a - b|| <= tol ||a||; optimizer
// moments too. Returns how many tensors were compared.
size_t same_weights(const std::string& a, const std::string& b, double tol) {
    auto sa = models::read_safetensors(a), sb = models::read_safetensors(b);
    auto mb = sb.f32_map();
    REQUIRE(sa.f32.size() == mb.size());
    for (auto& [name, t] : sa.f32) {
        const Tensor& u = mb.at(name);
        REQUIRE(u.numel() == t.numel());
        double d = 0, n = 0;
        for (int64_t i = 0; i < t.numel(); ++i) {
            d += std::pow(double(t.data()[i]) - u.data()[i], 2);
            n += std::pow(double(t.data()[i]), 2);
        }
        INFO(name << ": relative difference " << std::sqrt(d / std::max(n, 1e-300)));
        CHECK(std::sqrt(d) <= tol * std::sqrt(n) + 1e-30);
    }
    return sa.f32.size();
}

int count(const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
}

void check_equivalent(const std::string& flags) {
    std::string d1 = tmp("one"), d2 = tmp("two");
    for (auto& d : {d1, d2}) {
        fs::remove_all(d);
        fs::create_directories(d);
    }
    const std::string run = kRun + kBatch4 + "--max-steps 6 --probe-every 3 " + flags;
    Out b = one_then_two(run, d1, d2, true);
    // 6 steps; evaluations at 0, 2, 4; the global gradient norm of every step.
    same_metrics(d1 + "/metrics.csv", d2 + "/metrics.csv",
                 {"step", "tokens_seen", "batch_loss", "grad_norm", "train_loss", "val_loss"}, 1e-5, 6);
    // The probe's G is reduced across ranks (2 layers x 4 heads at steps 0 and 3).
    train::Csv pa = train::read_csv(d1 + "/dynamics.csv"), pb = train::read_csv(d2 + "/dynamics.csv");
    REQUIRE(pa.rows.size() == 16);
    REQUIRE(pb.rows.size() == pa.rows.size());
    for (size_t i = 0; i < pa.rows.size(); ++i)
        for (const char* c : {"g_norm", "attn_entropy", "dm_norm"}) {
            INFO("dynamics row " << i << " " << c);
            CHECK(std::abs(pa.at(i, c) - pb.at(i, c)) <= 1e-4 * std::max(1.0, std::abs(pa.at(i, c))));
        }
    CHECK(same_weights(d1 + "/model.safetensors", d2 + "/model.safetensors", 1e-5) > 0);
    // Rank 0 alone printed: one summary line.
    CHECK(count(b.text, "parameters,") == 1);
}

// An endless mpirun job in the background, in a process group of its own, its
// output in `log`. Whatever fails in a test, the job must not outlive it: the
// destructor stops mpirun (which ends its ranks) and, if it lingers, kills the group.
struct BackgroundJob {
    pid_t pid = -1;
    bool reaped = false;
    int status = 0;
    BackgroundJob(const std::string& args, const std::string& log) {
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::setpgid(0, 0);
            std::string cmd = "exec " + kMpirun + "-np 2 " + bin() + " " + args + " > '" + log + "' 2>&1";
            ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    BackgroundJob(const BackgroundJob&) = delete;
    BackgroundJob& operator=(const BackgroundJob&) = delete;
    bool wait_for(std::chrono::seconds limit) {
        auto t = std::chrono::steady_clock::now();
        while (!reaped && std::chrono::steady_clock::now() - t < limit) {
            if (::waitpid(pid, &status, WNOHANG) == pid)
                reaped = true;
            else
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return reaped;
    }
    // The rank's process: a child of mpirun with that rank in its environment.
    pid_t rank_pid(int rank) const {
        for (auto& e : fs::directory_iterator("/proc")) {
            // /proc/PID/stat: "pid (comm) state ppid ..."; tapegrad's comm has no space.
            std::ifstream st(e.path() / "stat");
            std::string comm;
            char state = 0;
            long self = 0, ppid = 0;
            if (!(st >> self >> comm >> state >> ppid) || ppid != pid) continue;
            std::ifstream env(e.path() / "environ", std::ios::binary);
            std::string all{std::istreambuf_iterator<char>(env), std::istreambuf_iterator<char>()};
            if (all.find("OMPI_COMM_WORLD_RANK=" + std::to_string(rank) + '\0') != std::string::npos)
                return static_cast<pid_t>(self);
        }
        return -1;
    }
    ~BackgroundJob() {
        if (reaped) return;
        ::kill(pid, SIGTERM);
        if (wait_for(std::chrono::seconds(10))) return;
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
    }
};

// Lines in a file (0 when it does not exist yet).
long lines_of(const std::string& path) {
    std::ifstream f(path);
    return std::count(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>(), '\n');
}

// Waits (at most 60 s) until every file has `n` lines.
bool wait_lines(const std::vector<std::string>& files, long n) {
    auto t0 = std::chrono::steady_clock::now();
    auto all = [&] {
        return std::all_of(files.begin(), files.end(), [&](auto& f) { return lines_of(f) >= n; });
    };
    while (!all() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return all();
}

std::string slurp_log(const std::string& path) {
    std::ifstream f(path);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("mpi: -np 2 with dropout 0 matches the single process", "[mpi]") {
    check_equivalent("--drop-rate 0");
    fs::remove_all(tmpdir());
}

TEST_CASE("mpi: -np 2 with dropout draws the single process's masks", "[mpi]") {
    check_equivalent("--drop-rate 0.1");  // the preset's rate, said explicitly
    // A per-rank draw would differ: the same run with a batch split that keeps
    // the masks but not the rows (each rank its own whole-batch masks) is not
    // offered; the check above is that the rows' masks are the global ones.
    fs::remove_all(tmpdir());
}

TEST_CASE("mpi: a checkpoint resumes across world sizes and continues the same run", "[mpi]") {
    std::string ref = tmp("ref"), ab = tmp("ab"), ba = tmp("ba");
    for (auto& d : {ref, ab, ba}) {
        fs::remove_all(d);
        fs::create_directories(d);
    }
    const std::string run = kRun + kBatch4 + "--drop-rate 0.1 ";
    Out r = single(run + "--max-steps 6 --out " + ref + " --save " + ref + "/m.safetensors");
    INFO(r.text);
    REQUIRE(r.code == 0);
    // -np 2 for 3 steps, then -np 1 to 6; and the other way round.
    Out a1 = ranks(2, run + "--max-steps 3 --out " + ab + " --save " + ab + "/m.safetensors");
    INFO(a1.text);
    REQUIRE(a1.code == 0);
    Out a2 = single(run + "--max-steps 6 --out " + ab + " --save " + ab + "/m.safetensors --resume " + ab +
                    "/m.safetensors");
    INFO(a2.text);
    REQUIRE(a2.code == 0);
    Out b1 = single(run + "--max-steps 3 --out " + ba + " --save " + ba + "/m.safetensors");
    REQUIRE(b1.code == 0);
    Out b2 = ranks(2, run + "--max-steps 6 --out " + ba + " --save " + ba + "/m.safetensors --resume " + ba +
                          "/m.safetensors");
    INFO(b2.text);
    REQUIRE(b2.code == 0);
    for (auto& d : {ab, ba}) {
        same_metrics(ref + "/metrics.csv", d + "/metrics.csv",
                     {"step", "batch_loss", "grad_norm", "val_loss"}, 1e-5, 6);
        same_weights(ref + "/m.safetensors", d + "/m.safetensors", 1e-5);
    }
    fs::remove_all(tmpdir());
}

TEST_CASE("mpi: a batch size the ranks cannot split is refused, once", "[mpi]") {
    Out o = ranks(2, kRun + "--max-steps 1 --batch-size 3");
    INFO(o.text);
    CHECK(o.code != 0);
    CHECK(count(o.text, "--batch-size 3 is the global batch and must split evenly over the 2 ranks") == 1);
}

TEST_CASE("mpi: an error on one rank ends every rank, message printed once", "[mpi]") {
    // MPMD: rank 0 gets a good run, rank 1 a missing --data file. Rank 0 goes on
    // to its first collective and would wait there forever without the abort.
    std::string missing = tmp("no_such_corpus.txt");
    auto t0 = std::chrono::steady_clock::now();
    Out o = sh(kMpirun + "-np 1 " + bin() + " " + kRun + kBatch4 + "--max-steps 50 : -np 1 " + bin() + " " +
               kRun + kBatch4 + "--max-steps 50 --data " + missing);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO(o.text);
    CHECK(o.code != 0);
    CHECK(o.code != 124);  // not ended by the test's timeout
    CHECK(s < 60);
    CHECK(count(o.text, missing) >= 1);
    CHECK(count(o.text, "error: ") == 1);
    fs::remove_all(tmpdir());
}

TEST_CASE("mpi: SIGTERM to one rank stops every rank after the same step", "[mpi]") {
    std::string d = tmp("sig");
    fs::remove_all(d);
    fs::create_directories(d);
    std::string log = tmp("sig.log");
    BackgroundJob job("train --preset tiny --context-length 16 --emb-dim 16 --n-heads 2 --n-layers 1 "
                      "--batch-size 4 --quiet --threads 1 --epochs 100000 --eval-freq 0 --out " +
                          d + " --save " + d + "/m.safetensors",
                      log);
    // Wait for steps, then signal rank 1 alone.
    REQUIRE(wait_lines({d + "/metrics.csv"}, 20));
    pid_t rank1 = job.rank_pid(1);
    REQUIRE(rank1 > 0);
    ::kill(rank1, SIGTERM);
    REQUIRE(job.wait_for(std::chrono::seconds(120)));  // no hang: both ranks end
    std::string text = slurp_log(log);
    INFO(text);
    CHECK(test::exit_code(job.status) == 143);  // every rank stopped cleanly by SIGTERM (128 + 15)
    CHECK(count(text, "stopped by SIGTERM") == 1);
    // The checkpoint holds the last finished step, as a single process's would.
    auto ck = models::read_safetensors(d + "/m.safetensors");
    CHECK(ck.metadata.count("tapegrad.train") == 1);
    fs::remove_all(tmpdir());
}

TEST_CASE("mpi: a sweep stops on every rank when one rank's run is signalled", "[mpi][sweep]") {
    // Two endless runs (seeds 1 and 2 of mha), one per rank. SIGTERM to rank 1
    // stops its run; its stop notice stops rank 0's run too (without it rank 0
    // would train forever and rank 1 wait forever), and the sweep ends with 143.
    std::string d = tmp("sweep_sig");
    fs::remove_all(d);
    std::string log = tmp("sweep_sig.log");
    BackgroundJob job(
        "sweep --preset tiny --context-length 16 --emb-dim 16 --n-heads 2 --n-layers 1 "
        "--threads 1 --epochs 100000 --eval-freq 0 --variants mha --lrs 4e-4 --seeds 1,2 --out " +
            d,
        log);
    const std::string runs = d + "/runs/mha/lr4e-04/";
    REQUIRE(wait_lines({runs + "seed1/metrics.csv", runs + "seed2/metrics.csv"}, 20));
    pid_t rank1 = job.rank_pid(1);
    REQUIRE(rank1 > 0);
    ::kill(rank1, SIGTERM);
    REQUIRE(job.wait_for(std::chrono::seconds(60)));  // no hang: both ranks end
    std::string text = slurp_log(log);
    INFO(text);
    CHECK(test::exit_code(job.status) == 143);
    CHECK(count(text, "sweep stopped by SIGTERM") == 1);
    // Neither run finished: no done.json, so a rerun trains both again.
    CHECK_FALSE(fs::exists(runs + "seed1/done.json"));
    CHECK_FALSE(fs::exists(runs + "seed2/done.json"));
    CHECK(train::finished_runs(d).empty());
    fs::remove_all(tmpdir());
}

TEST_CASE("mpi: a sweep under -np 2 spreads its runs and aggregates as the single process", "[mpi][sweep]") {
    // 2 variants x 2 lrs at seed 1, then both variants at seed 2 at the chosen
    // lrs: 6 runs. Under -np 2: mha at both lrs (mha draws seed 1's batch order),
    // alt1 at both, then mha and alt1 at seed 2 one after the other (alt1 replays
    // the order mha records): 4 rounds, two of them with a run on rank 1. Each run is a single-process run
    // on its rank, so every run's numbers equal the single process's exactly
    // (same code, same thread count), not merely within a float tolerance.
    std::string d1 = tmp("sweep_one"), d2 = tmp("sweep_two");
    const std::string sweep =
        "sweep --preset tiny --context-length 16 --emb-dim 16 --n-heads 2 --n-layers 1 --threads 1 "
        "--max-steps 3 --eval-freq 1 --eval-iter 1 --probe-every 2 --variants mha,alt1 --lrs 4e-4,1e-3 "
        "--seeds 1 --eval-seeds 2 ";
    Out b = one_then_two(sweep, d1, d2);
    // Rank 0 alone printed; the rounds named the rank of each run.
    CHECK(count(b.text, "trained 6 run(s) now, 6 finished") == 1);
    CHECK(count(b.text, "(rank 1) ==") == 2);
    auto ra = train::finished_runs(d1), rb = train::finished_runs(d2);
    REQUIRE(ra.size() == 6);
    REQUIRE(rb.size() == 6);
    for (size_t i = 0; i < ra.size(); ++i) {
        INFO(ra[i].variant << " lr " << ra[i].lr << " seed " << ra[i].seed);
        CHECK(rb[i].variant == ra[i].variant);
        CHECK(rb[i].lr == ra[i].lr);
        CHECK(rb[i].seed == ra[i].seed);
        CHECK(rb[i].steps == ra[i].steps);
        CHECK(rb[i].final_val_loss == ra[i].final_val_loss);
        CHECK(rb[i].best_val_loss == ra[i].best_val_loss);
        CHECK(rb[i].final_train_loss == ra[i].final_train_loss);
    }
    // The same aggregate: summary.csv row count and report.md from rank 0.
    for (auto& d : {d1, d2}) {
        std::ifstream f(d + "/summary.csv");
        CHECK(std::count(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>(), '\n') == 7);
        CHECK(fs::exists(d + "/report.md"));
    }
    // All finished: a rerun under mpirun trains nothing.
    Out c = ranks(2, sweep + "--out " + d2);
    INFO(c.text);
    CHECK(c.code == 0);
    CHECK(count(c.text, "trained 0 run(s) now, 6 finished") == 1);
    fs::remove_all(tmpdir());
}

TEST_CASE("mpi: small buckets start during backward, several of them, same losses", "[mpi]") {
    // --bucket-mb 0.05 (12500 floats) cuts the tiny model's gradient into many
    // buckets; the reducer starts each as soon as its gradients are final, while
    // backward still walks the tape. summary.json counts those starts.
    std::string d1 = tmp("bk_one"), d2 = tmp("bk_two");
    for (auto& d : {d1, d2}) {
        fs::remove_all(d);
        fs::create_directories(d);
    }
    const std::string run = kRun + kBatch4 + "--max-steps 4 --drop-rate 0 --bucket-mb 0.05 ";
    Out b = one_then_two(run, d1, d2);
    same_metrics(d1 + "/metrics.csv", d2 + "/metrics.csv", {"step", "batch_loss", "grad_norm", "val_loss"},
                 1e-5, 4);
    nlohmann::json s = nlohmann::json::parse(std::ifstream(d2 + "/summary.json"));
    REQUIRE(s.contains("data_parallel"));
    const auto& dp = s["data_parallel"];
    INFO(dp.dump());
    CHECK(dp["world"] == 2);
    CHECK(dp["steps"] == 4);
    CHECK(dp["buckets"].get<int64_t>() > 1);
    // Every step, every bucket but possibly the last (the token embedding's, final
    // at the tape's very end) started during backward.
    CHECK(dp["launched_in_backward"].get<int64_t>() >= 4 * (dp["buckets"].get<int64_t>() - 1));
    CHECK(dp["launched_in_backward"].get<int64_t>() > 0);
    // The single process has no data-parallel section.
    CHECK_FALSE(nlohmann::json::parse(std::ifstream(d1 + "/summary.json")).contains("data_parallel"));
    fs::remove_all(tmpdir());
}

TEST_CASE("mpi: compare under -np 2 gives both variants the single process's losses, rank 0 writes",
          "[mpi]") {
    std::string d1 = tmp("cmp_one"), d2 = tmp("cmp_two");
    const std::string run = "compare --preset tiny --context-length 32 --eval-freq 2 --eval-iter 2 --quiet "
                            "--threads 1 --batch-size 4 --max-steps 4 --probe-every 2 --drop-rate 0 ";
    Out b = one_then_two(run, d1, d2);
    for (const char* v : {"mha", "alt1"}) {
        INFO(v);
        // Exactly 4 rows each: a second writer would have doubled or torn them.
        same_metrics(d1 + "/" + v + "/metrics.csv", d2 + "/" + v + "/metrics.csv",
                     {"step", "tokens_seen", "batch_loss", "grad_norm", "train_loss", "val_loss"}, 1e-5, 4);
        CHECK(fs::exists(d2 + "/" + v + "/summary.json"));
        CHECK(fs::exists(d2 + "/" + v + "/model.safetensors"));
    }
    CHECK(fs::exists(d2 + "/report.md"));
    // Rank 0 alone printed: one header per variant and one report line.
    CHECK(count(b.text, "== mha (") == 1);
    CHECK(count(b.text, "== alt1 (") == 1);
    CHECK(count(b.text, "/report.md and plots") == 1);
    fs::remove_all(tmpdir());
}

TEST_CASE("mpi: a locked sweep folder is refused on every rank alike, naming the holder's pid",
          "[mpi][sweep][lock]") {
    // Another sweep holds OUT (its flock, its pid in the lock file): rank 0 finds
    // it taken and tells rank 1, so both end at once with the same message; the
    // holder's folder is not touched.
    std::string d = tmp("sweep_locked");
    fs::create_directories(d);
    std::string lock = d + "/.tapegrad.lock";
    pid_t holder = ::fork();
    REQUIRE(holder >= 0);
    if (holder == 0) {
        std::string cmd = "echo $$ > '" + lock + "' && exec flock -n -o '" + lock + "' sleep 120";
        ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Out r =
        ranks(2, "sweep --preset tiny --context-length 16 --emb-dim 16 --n-heads 2 --n-layers 1 --threads 1 "
                 "--max-steps 2 --eval-freq 0 --variants mha --lrs 4e-4 --seeds 1,2 --out " +
                     d);
    INFO(r.text);
    CHECK(r.code != 0);
    CHECK(r.code != 124);  // no hang
    CHECK(count(r.text, "in use by another run (pid " + std::to_string(holder) + ")") >= 1);
    CHECK_FALSE(fs::exists(d + "/runs"));
    ::kill(holder, SIGKILL);
    ::waitpid(holder, nullptr, 0);
    fs::remove_all(tmpdir());
}
