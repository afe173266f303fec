// The training executable's debugging aids on the real model (tiny preset):
// --dump-tape / --dump-tape-step for mha and alt1 (also after --resume), their
// bad input, and a malformed TAPEGRAD_BREAK_STEP. Breaking in gdb is tested by
// tests/gdb_train.sh.
#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_run.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

using Out = tg::test::CliResult;
using tg::test::run;

std::string read(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// A fresh folder per test case.
struct TmpDir {
    fs::path dir;
    explicit TmpDir(const std::string& name)
        : dir(fs::temp_directory_path() / ("tapegrad_debug_" + name + "_" + std::to_string(::getpid()))) {
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    ~TmpDir() { fs::remove_all(dir); }
    std::string operator/(const std::string& f) const { return (dir / f).string(); }
};

const std::string kTiny = "--preset tiny --eval-freq 0 --quiet ";

int entries_in(const std::string& dump) {
    int n = 0;
    std::istringstream is(dump);
    for (std::string line; std::getline(is, line);)
        if (line.size() > 1 && line[0] == '#' && std::isdigit(static_cast<unsigned char>(line[1]))) n++;
    return n;
}

}  // namespace

TEST_CASE("train --help lists the tape dump flags", "[cli][debug]") {
    Out o = run("train --help");
    CHECK(o.code == 0);
    CHECK_THAT(o.text, Catch::Contains("--dump-tape") && Catch::Contains("--dump-tape-step"));
}

TEST_CASE("train --dump-tape writes one step's tape before backward frees it, text and DOT, mha and alt1",
          "[cli][debug]") {
    TmpDir d("dump");
    Out m = run("train " + kTiny + "--attention mha --max-steps 3 --dump-tape " + (d / "mha.txt") +
                " --dump-tape-step 1");
    INFO(m.text);
    REQUIRE(m.code == 0);
    std::string t = read(d / "mha.txt");
    CHECK_THAT(t, Catch::StartsWith("# tapegrad train --dump-tape: step 1 of "));
    // the whole forward and loss (65 entries for 2 mha layers), not a freed tape
    int n = entries_in(t);
    CHECK(n > 50);
    CHECK_THAT(t, Catch::Contains(", " + std::to_string(n) + " entries\n"));
    // one line for the scores of all heads: q and k^T views, both needing grad
    CHECK_THAT(t, Catch::Contains(" matmul ") && Catch::Contains(" trf_blocks.1.att.scores ") &&
                      Catch::Contains("trf_blocks.1.att.transpose[2, 4, 64, 16] <- #") &&
                      Catch::Contains("trf_blocks.0.att.W_query.weight[64, 64] leaf, needs grad") &&
                      Catch::Contains("cross_entropy") && Catch::Contains("nn/attention.cpp:"));
    std::string dot = read(d / "mha.txt.dot");
    CHECK_THAT(dot, Catch::StartsWith("digraph tape") && Catch::Contains("trf_blocks.1.att.scores") &&
                        Catch::Contains("requires_grad"));

    Out a = run("train " + kTiny + "--attention alt1 --max-steps 1 --dump-tape " + (d / "alt1.txt"));
    INFO(a.text);
    REQUIRE(a.code == 0);
    std::string ta = read(d / "alt1.txt");
    CHECK_THAT(ta, Catch::StartsWith("# tapegrad train --dump-tape: step 0 of "));
    CHECK_THAT(ta, Catch::Contains("trf_blocks.1.att.heads.3.scores") &&
                       Catch::Contains("trf_blocks.1.att.heads.3.S.linear") &&
                       Catch::Contains("trf_blocks.1.att.heads.3.S.weight[64, 64] leaf, needs grad"));
    CHECK_THAT(ta, !Catch::Contains("trf_blocks.1.att.scores "));
    CHECK(fs::exists(d / "alt1.txt.dot"));
    // only the two files per dump: no temporaries left behind
    CHECK(std::distance(fs::directory_iterator(d.dir), fs::directory_iterator()) == 4);
}

TEST_CASE("train --dump-tape after --resume defaults to the resumed step and refuses steps outside the run",
          "[cli][debug][errors]") {
    TmpDir d("dump_resume");
    std::string ck = d / "ck.safetensors";
    REQUIRE(run("train " + kTiny + "--max-steps 2 --save " + ck).code == 0);
    Out r = run("train " + kTiny + "--max-steps 3 --resume " + ck + " --dump-tape " + (d / "t.txt"));
    INFO(r.text);
    REQUIRE(r.code == 0);
    CHECK_THAT(read(d / "t.txt"), Catch::StartsWith("# tapegrad train --dump-tape: step 2 of "));

    Out early = run("train " + kTiny + "--max-steps 4 --resume " + ck + " --dump-tape " + (d / "e.txt") +
                    " --dump-tape-step 1");
    CHECK(early.code == 1);
    CHECK_THAT(early.text, Catch::Contains("--dump-tape-step 1: this run makes steps 2..3") &&
                               Catch::Contains("after --resume"));
    Out late = run("train " + kTiny + "--max-steps 3 --dump-tape " + (d / "l.txt") + " --dump-tape-step 3");
    CHECK(late.code == 1);
    CHECK_THAT(late.text, Catch::Contains("--dump-tape-step 3: this run makes steps 0..2"));
    Out nodir = run("train " + kTiny + "--max-steps 1 --dump-tape " + (d / "no/such/t.txt"));
    CHECK(nodir.code == 1);
    CHECK_THAT(nodir.text, Catch::Contains("--dump-tape") && Catch::Contains("does not exist"));
    Out alone = run("train " + kTiny + "--max-steps 1 --dump-tape-step 0");
    CHECK(alone.code != 0);
    CHECK_THAT(alone.text, Catch::Contains("--dump-tape-step") && Catch::Contains("--dump-tape"));
    Out neg = run("train " + kTiny + "--max-steps 1 --dump-tape " + (d / "n.txt") + " --dump-tape-step -2");
    CHECK(neg.code != 0);
    for (const char* f : {"e.txt", "l.txt", "n.txt"}) CHECK_FALSE(fs::exists(d / f));
}

TEST_CASE("a malformed TAPEGRAD_BREAK_STEP is refused naming the variable", "[cli][debug][errors]") {
    ::setenv("TAPEGRAD_BREAK_ON", "trf_blocks.0.att.scores", 1);
    ::setenv("TAPEGRAD_BREAK_STEP", "three", 1);
    Out o = run("train " + kTiny + "--max-steps 1");
    ::unsetenv("TAPEGRAD_BREAK_STEP");
    ::unsetenv("TAPEGRAD_BREAK_ON");
    CHECK(o.code == 1);
    CHECK_THAT(o.text,
               Catch::Contains("TAPEGRAD_BREAK_STEP='three'") && Catch::Contains("non-negative integer"));
}
