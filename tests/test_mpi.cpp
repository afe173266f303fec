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
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "models/checkpoint.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace tg;

namespace {

struct Out {
    int code;
    std::string text;
};

int exit_code(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1; }

fs::path tmpdir() {
    fs::path d = fs::temp_directory_path() / ("tapegrad_mpi_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
}
std::string tmp(const std::string& name) { return (tmpdir() / name).string(); }

// `timeout` bounds every job: a hang fails the case instead of the whole ctest run.
Out sh(const std::string& cmd) {
    FILE* p = popen(("timeout -k 5 120 " + cmd + " 2>&1").c_str(), "r");
    REQUIRE(p);
    std::string text;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) text.append(buf.data(), n);
    return {exit_code(pclose(p)), text};
}

const std::string kMpirun = "mpirun --allow-run-as-root --oversubscribe ";
std::string bin() { return TAPEGRAD_BIN; }
Out single(const std::string& args) { return sh(bin() + " " + args); }
Out ranks(int n, const std::string& args) {
    return sh(kMpirun + "-np " + std::to_string(n) + " " + bin() + " " + args);
}

// A small GPT, several steps with evaluations, the probe and a checkpoint.
const std::string kRun =
    "train --preset tiny --context-length 32 --eval-freq 2 --eval-iter 2 --quiet --threads 1 ";
const std::string kBatch4 = "--batch-size 4 ";

// metrics.csv as rows of named numbers (empty fields are NaN).
std::vector<std::map<std::string, double>> read_csv(const std::string& path) {
    std::ifstream f(path);
    REQUIRE(f);
    std::string line;
    std::getline(f, line);
    std::vector<std::string> names;
    std::stringstream hs(line);
    for (std::string c; std::getline(hs, c, ',');) names.push_back(c);
    std::vector<std::map<std::string, double>> rows;
    while (std::getline(f, line)) {
        std::stringstream ls(line);
        std::map<std::string, double> r;
        size_t i = 0;
        for (std::string c; i < names.size(); ++i) {
            if (!std::getline(ls, c, ',')) c.clear();
            r[names[i]] = c.empty() ? std::nan("") : std::stod(c);
        }
        rows.push_back(r);
    }
    return rows;
}

// Every column in `cols` of two metrics files within `tol` (absolute), row by row.
void same_metrics(const std::string& a, const std::string& b, const std::vector<std::string>& cols,
                  double tol, size_t expect_rows) {
    auto ra = read_csv(a), rb = read_csv(b);
    REQUIRE(ra.size() == expect_rows);
    REQUIRE(rb.size() == expect_rows);
    for (size_t i = 0; i < ra.size(); ++i)
        for (const auto& c : cols) {
            double x = ra[i].at(c), y = rb[i].at(c);
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
    Out a = single(run + " --out " + d1 + " --save " + d1 + "/model.safetensors");
    INFO(a.text);
    REQUIRE(a.code == 0);
    Out b = ranks(2, run + " --out " + d2 + " --save " + d2 + "/model.safetensors");
    INFO(b.text);
    REQUIRE(b.code == 0);
    // 6 steps; evaluations at 0, 2, 4; the global gradient norm of every step.
    same_metrics(d1 + "/metrics.csv", d2 + "/metrics.csv",
                 {"step", "tokens_seen", "batch_loss", "grad_norm", "train_loss", "val_loss"}, 1e-5, 6);
    // The probe's G is reduced across ranks (2 layers x 4 heads at steps 0 and 3).
    auto pa = read_csv(d1 + "/dynamics.csv"), pb = read_csv(d2 + "/dynamics.csv");
    REQUIRE(pa.size() == 16);
    REQUIRE(pb.size() == pa.size());
    for (size_t i = 0; i < pa.size(); ++i)
        for (const char* c : {"g_norm", "attn_entropy", "dm_norm"}) {
            INFO("dynamics row " << i << " " << c);
            CHECK(std::abs(pa[i].at(c) - pb[i].at(c)) <= 1e-4 * std::max(1.0, std::abs(pa[i].at(c))));
        }
    CHECK(same_weights(d1 + "/model.safetensors", d2 + "/model.safetensors", 1e-5) > 0);
    // Rank 0 alone printed: one summary line.
    CHECK(count(b.text, "parameters,") == 1);
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
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::setpgid(0, 0);  // mpirun and its ranks in a group of their own, which the guard can end
        std::string cmd = "exec " + kMpirun + "-np 2 " + bin() +
                          " train --preset tiny --context-length 16 --emb-dim 16 --n-heads 2 --n-layers 1 "
                          "--batch-size 4 --quiet --threads 1 --epochs 100000 --eval-freq 0 --out " +
                          d + " --save " + d + "/m.safetensors > '" + log + "' 2>&1";
        ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    // Whatever fails below, this endless job must not outlive the test: the guard
    // stops mpirun (which ends its ranks) and, if it lingers, kills the group.
    struct EndJob {
        pid_t pid;
        bool reaped = false;
        int status = 0;
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
        ~EndJob() {
            if (reaped) return;
            ::kill(pid, SIGTERM);
            if (wait_for(std::chrono::seconds(10))) return;
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
        }
    } job{pid};
    // Wait for steps, then signal rank 1 alone (a child of mpirun with rank 1 in its environment).
    auto lines = [&] {
        std::ifstream f(d + "/metrics.csv");
        return std::count(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>(), '\n');
    };
    auto t0 = std::chrono::steady_clock::now();
    while (lines() < 20 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(lines() >= 20);
    pid_t rank1 = -1;
    for (auto& e : fs::directory_iterator("/proc")) {
        // /proc/PID/stat: "pid (comm) state ppid ..."; tapegrad's comm has no space.
        std::ifstream st(e.path() / "stat");
        std::string comm;
        char state = 0;
        long self = 0, ppid = 0;
        if (!(st >> self >> comm >> state >> ppid) || ppid != pid) continue;
        std::ifstream env(e.path() / "environ", std::ios::binary);
        std::string all{std::istreambuf_iterator<char>(env), std::istreambuf_iterator<char>()};
        if (all.find(std::string("OMPI_COMM_WORLD_RANK=1") + '\0') != std::string::npos) rank1 = self;
    }
    REQUIRE(rank1 > 0);
    ::kill(rank1, SIGTERM);
    REQUIRE(job.wait_for(std::chrono::seconds(120)));  // no hang: both ranks end
    int st = job.status;
    std::ifstream lf(log);
    std::string text{std::istreambuf_iterator<char>(lf), std::istreambuf_iterator<char>()};
    INFO(text);
    CHECK(exit_code(st) == 143);  // every rank stopped cleanly by SIGTERM (128 + 15)
    CHECK(count(text, "stopped by SIGTERM") == 1);
    // The checkpoint holds the last finished step, as a single process's would.
    auto ck = models::read_safetensors(d + "/m.safetensors");
    CHECK(ck.metadata.count("tapegrad.train") == 1);
    fs::remove_all(tmpdir());
}
