// A run's history and identity (issues 36.1 and 40): JSON that survives any bytes,
// a run known by its configuration, a resume that restores history exactly and
// only into its own folder, every write checked, every output path tried first.
// Each case fails on the behaviour the issues describe.
#include <catch2/catch.hpp>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli_run.h"
#include "models/safetensors.h"
#include "test_util.h"
#include "train/run/summary.h"
#include "train_test_util.h"

namespace fs = std::filesystem;
using namespace tg;
using tg::test::CliResult;
using tg::test::exit_code;
using tg::test::run;

namespace {

fs::path tmpdir() {
    fs::path d = fs::temp_directory_path() / ("tapegrad_hist_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
}
std::string tmp(const std::string& name) { return (tmpdir() / name).string(); }

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(slurp(path)); }

std::vector<std::string> lines_of(const std::string& path) {
    std::ifstream f(path);
    std::vector<std::string> out;
    for (std::string l; std::getline(f, l);) out.push_back(l);
    return out;
}

// metrics.csv without its wall-clock column (elapsed_s, the 7th): what two runs
// of the same steps must agree on exactly.
std::vector<std::string> metrics_without_clock(const std::string& path) {
    std::vector<std::string> out;
    for (const std::string& l : lines_of(path)) {
        std::vector<std::string> f;
        std::stringstream ss(l);
        for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
        if (l.back() == ',') f.push_back("");
        if (f.size() > 6) f.erase(f.begin() + 6);
        std::string row;
        for (auto& x : f) row += x + ",";
        out.push_back(row);
    }
    return out;
}

// A background tapegrad; rlimit_fsize > 0 limits the size of any file it writes
// (SIGXFSZ ignored, so a write past it fails with EFBIG: a full disk, no root).
struct Child {
    pid_t pid = -1;
    std::string log;
    int wait() {
        int st = 0;
        ::waitpid(pid, &st, 0);
        return exit_code(st);
    }
    std::string output() const { return slurp(log); }
};

Child spawn(const std::string& args, const std::string& log, rlim_t rlimit_fsize = 0) {
    Child c;
    c.log = log;
    c.pid = ::fork();
    REQUIRE(c.pid >= 0);
    if (c.pid == 0) {
        if (rlimit_fsize > 0) {
            ::signal(SIGXFSZ, SIG_IGN);
            struct rlimit r {
                rlimit_fsize, rlimit_fsize
            };
            ::setrlimit(RLIMIT_FSIZE, &r);
        }
        std::string cmd = "exec " + std::string(TAPEGRAD_BIN) + " " + args + " > '" + log + "' 2>&1";
        ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    return c;
}

int64_t count_lines(const std::string& path) { return static_cast<int64_t>(lines_of(path).size()); }

bool wait_for(const std::function<bool()>& ready, double seconds = 120) {
    auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
        if (ready()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

int64_t checkpoint_step(const std::string& path) {
    auto st = models::read_safetensors(path);
    return nlohmann::json::parse(st.metadata.at("tapegrad.train")).at("global_step").get<int64_t>();
}

// A small GPT, quick to train (about a hundred steps a second).
const std::string kSmall = "--preset tiny --context-length 16 --emb-dim 16 --n-heads 2 --n-layers 1 --quiet ";

}  // namespace

TEST_CASE("36.1: a sample of bytes that are no UTF-8 leaves summary.json readable, its ids exact",
          "[history][json]") {
    train::TrainOptions o = test::tiny_run();
    train::TrainResult r;
    r.steps = 1;
    // "Every effort" then a cut UTF-8 character (0xE2 0x80 of a quote) and a lone 0xFF, then 'z' (0x7A).
    r.samples = {std::string("Every effort \xE2\x80", 15) + "\xFFz"};
    r.sample_ids = {{6109, 3626, 447, 255, 89}};
    std::string dir = tmp("bytes");
    fs::create_directories(dir);
    REQUIRE_NOTHROW(train::write_summary(dir, o, r));
    auto j = read_json(dir + "/summary.json");  // parses: valid UTF-8
    std::string text = j.at("samples").at(0).get<std::string>();
    CHECK(text.rfind("Every effort ", 0) == 0);
    CHECK_THAT(text, Catch::Contains("\xEF\xBF\xBD"));  // U+FFFD in place of the bytes
    CHECK(j.at("sample_ids").get<std::vector<std::vector<int64_t>>>() == r.sample_ids);
    fs::remove_all(dir);
}

TEST_CASE("36.1: tiny runs at seeds 3 and 4 exit 0 and write summary.json", "[history][json]") {
    for (int seed : {3, 4}) {
        std::string out = tmp("seed" + std::to_string(seed));
        CliResult r =
            run("train --preset tiny --epochs 1 --quiet --seed " + std::to_string(seed) + " --out " + out, "",
                "", 600);
        INFO(r.text);
        CHECK(r.code == 0);
        REQUIRE(fs::exists(out + "/summary.json"));
        auto j = read_json(out + "/summary.json");
        REQUIRE(j.at("samples").size() == 1);
        CHECK(j.at("sample_ids").at(0).size() > 50);  // the context and 50 new tokens
        fs::remove_all(out);
    }
}

TEST_CASE("40.1: a sweep reuses a finished run only if its configuration matches", "[history][config]") {
    std::string sw = tmp("sweep");
    std::string base =
        "sweep " + kSmall + "--variants mha,alt1 --lrs 0.001 --seeds 1 --probe-every 0 --out " + sw;
    CliResult a = run(base + " --max-steps 6", "", "", 300);
    INFO(a.text);
    REQUIRE(a.code == 0);
    std::string run_mha = sw + "/runs/mha/lr1e-03/seed1";
    CHECK(read_json(run_mha + "/done.json").at("configuration").at("max_steps") == 6);
    CHECK(read_json(run_mha + "/summary.json").at("configuration").at("lr") == 0.001);
    CliResult b = run(base + " --max-steps 5", "", "", 300);
    INFO(b.text);
    CHECK(b.code == 1);
    CHECK_THAT(b.text, Catch::Contains("max_steps 6 (finished run) vs 5 (this sweep)") &&
                           Catch::Contains("--overwrite"));
    CHECK(count_lines(run_mha + "/metrics.csv") == 7);  // refused: nothing retrained, nothing removed
    CliResult c = run(base + " --max-steps 5 --overwrite", "", "", 300);
    INFO(c.text);
    CHECK(c.code == 0);
    CHECK_THAT(c.text, Catch::Contains("trained 2 run(s) now") && Catch::Contains("trained again"));
    CHECK(read_json(run_mha + "/done.json").at("configuration").at("max_steps") == 5);
    CHECK(count_lines(run_mha + "/metrics.csv") == 6);
    CliResult d = run(base + " --max-steps 5", "", "", 300);  // now it matches: reused
    CHECK(d.code == 0);
    CHECK_THAT(d.text, Catch::Contains("trained 0 run(s) now, 2 finished"));
    fs::remove_all(sw);
}

TEST_CASE("40.5: resume after SIGKILL cuts metrics.csv back: each step once, as an uninterrupted run",
          "[history][resume]") {
    std::string out = tmp("killed"), ck = tmp("killed.st"), ref = tmp("uninterrupted");
    const std::string args =
        "train " + kSmall + "--eval-freq 5 --eval-iter 1 --save " + ck + " --save-every 25 --out " + out;
    Child c = spawn(args + " --max-steps 100000", tmp("killed.log"));
    REQUIRE(wait_for(
        [&] { return fs::exists(out + "/metrics.csv") && count_lines(out + "/metrics.csv") >= 64; }));
    ::kill(c.pid, SIGKILL);
    CHECK(c.wait() == 128 + SIGKILL);
    int64_t logged = count_lines(out + "/metrics.csv") - 1, saved = checkpoint_step(ck);
    INFO("logged " << logged << " rows, checkpoint at step " << saved);
    REQUIRE(saved + 1 < logged);  // rows after the checkpoint: the ones a resume must not repeat
    const int64_t steps = logged + 20;
    CliResult r = run(args + " --resume " + ck + " --max-steps " + std::to_string(steps), "", "", 300);
    INFO(r.text);
    REQUIRE(r.code == 0);
    CliResult u = run("train " + kSmall + "--eval-freq 5 --eval-iter 1 --out " + ref + " --max-steps " +
                          std::to_string(steps),
                      "", "", 300);
    REQUIRE(u.code == 0);
    auto got = metrics_without_clock(out + "/metrics.csv"),
         want = metrics_without_clock(ref + "/metrics.csv");
    CHECK(static_cast<int64_t>(got.size()) == steps + 1);
    CHECK(got == want);
    fs::remove_all(out);
    fs::remove_all(ref);
}

TEST_CASE("40.5: SIGINT in epoch 2, then --resume: summary.json has every sample and loss line",
          "[history][resume]") {
    std::string out = tmp("stopped"), ck = tmp("stopped.st"), ref = tmp("whole");
    // --max-length 8 on the first 3000 characters: a few dozen steps an epoch.
    std::string text = tmp("short.txt");
    std::ofstream(text) << slurp(test::source_path("data/the-verdict.txt")).substr(0, 3000);
    const std::string args =
        "train " + kSmall + "--data " + text + " --max-length 8 --epochs 3 --eval-freq 4 --eval-iter 1 ";
    CliResult u = run(args + "--out " + ref, "", "", 300);
    REQUIRE(u.code == 0);
    auto whole = read_json(ref + "/summary.json");
    REQUIRE(whole.at("samples").size() == 3);
    const int64_t per_epoch = whole.at("steps").get<int64_t>() / 3;
    Child c = spawn(args + "--save " + ck + " --out " + out, tmp("stopped.log"));
    // Stop it in epoch 2 (the metrics row's first field is the epoch).
    REQUIRE(wait_for([&] {
        auto l = lines_of(out + "/metrics.csv");
        return l.size() > 1 && l.back().rfind("2,", 0) == 0;
    }));
    ::kill(c.pid, SIGINT);
    CHECK(c.wait() == 130);
    auto stopped = read_json(out + "/summary.json");
    INFO(c.output());
    REQUIRE(stopped.at("steps").get<int64_t>() > per_epoch);
    REQUIRE(stopped.at("steps").get<int64_t>() < 2 * per_epoch);  // inside epoch 2
    CliResult r = run(args + "--resume " + ck + " --save " + ck + " --out " + out, "", "", 300);
    INFO(r.text);
    REQUIRE(r.code == 0);
    auto resumed = read_json(out + "/summary.json");
    CHECK(resumed.at("samples") == whole.at("samples"));
    CHECK(resumed.at("sample_ids") == whole.at("sample_ids"));
    CHECK(resumed.at("book_lines") == whole.at("book_lines"));
    CHECK(resumed.at("final_val_loss") == whole.at("final_val_loss"));
    fs::remove_all(out);
    fs::remove_all(ref);
}

TEST_CASE("40.6: --resume into another run's folder is refused, into its own it continues",
          "[history][identity]") {
    std::string a = tmp("run_a"), b = tmp("run_b"), ck = tmp("a.st");
    REQUIRE(run("train " + kSmall + "--eval-freq 0 --max-steps 5 --save " + ck + " --out " + a).code == 0);
    REQUIRE(run("train " + kSmall + "--eval-freq 0 --max-steps 5 --seed 7 --out " + b).code == 0);
    std::string b_metrics = slurp(b + "/metrics.csv");
    CHECK(fs::exists(a + "/run_id"));
    CliResult r = run("train " + kSmall + "--eval-freq 0 --max-steps 9 --resume " + ck + " --out " + b);
    INFO(r.text);
    CHECK(r.code == 1);
    CHECK_THAT(r.text,
               Catch::Contains("--resume") && Catch::Contains("belongs to run") && Catch::Contains(b));
    CHECK(slurp(b + "/metrics.csv") == b_metrics);  // untouched
    CliResult own = run("train " + kSmall + "--eval-freq 0 --max-steps 9 --resume " + ck + " --out " + a);
    INFO(own.text);
    CHECK(own.code == 0);
    CHECK(count_lines(a + "/metrics.csv") == 10);
    CHECK(read_json(a + "/summary.json").at("run_id") == slurp(a + "/run_id").substr(0, 16));
    fs::remove_all(a);
    fs::remove_all(b);
}

TEST_CASE("40.7: a failed write stops the run naming the file and the reason, keeping the checkpoint",
          "[history][writes]") {
    // metrics.csv past a 16 KB file size limit: about 200 rows.
    std::string out = tmp("full");
    Child c =
        spawn("train " + kSmall + "--eval-freq 0 --max-steps 3000 --out " + out, tmp("full.log"), 16384);
    int code = c.wait();
    std::string text = c.output();
    INFO(text);
    CHECK(code == 1);
    CHECK_THAT(text,
               Catch::Contains("writing '" + out + "/metrics.csv'") && Catch::Contains("File too large"));
    CHECK(count_lines(out + "/metrics.csv") < 3000);  // stopped at the failure, not trained to the end
    fs::remove_all(out);
    // A checkpoint that cannot be rewritten: the run stops, the last good one stays.
    std::string out2 = tmp("full_ck"), ck = tmp("full.st");
    REQUIRE(run("train " + kSmall + "--eval-freq 0 --max-steps 10 --save " + ck + " --out " + out2).code ==
            0);
    Child d = spawn("train " + kSmall + "--eval-freq 0 --max-steps 40 --resume " + ck + " --save " + ck +
                        " --save-every 5 --out " + out2,
                    tmp("full_ck.log"), 65536);
    code = d.wait();
    text = d.output();
    INFO(text);
    CHECK(code == 1);
    CHECK_THAT(text, Catch::Contains("File too large") &&
                         Catch::Contains("kept: the checkpoint '" + ck + "' (step 9"));
    CHECK(checkpoint_step(ck) == 9);  // intact and loadable
    fs::remove_all(out2);
}

TEST_CASE("40.9: an unwritable --dump-tape is refused before the first step", "[history][paths]") {
    std::string out = tmp("dump");
    auto t0 = std::chrono::steady_clock::now();
    // /proc/self is a folder no one (root included) can create a file in.
    CliResult r = run("train " + kSmall +
                      "--eval-freq 0 --max-steps 40 --dump-tape /proc/self/tape.txt "
                      "--dump-tape-step 29 --out " +
                      out);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO(r.text);
    CHECK(r.code == 1);
    CHECK_THAT(r.text, Catch::Contains("--dump-tape") && Catch::Contains("/proc/self/tape.txt"));
    CHECK_FALSE(fs::exists(out + "/metrics.csv"));  // no step trained
    CHECK(secs < 30);
    fs::remove_all(tmpdir());
}
