// Every attention variant through the whole command line (issue 34): the
// extension variants are registered in-process by tapegrad_variants
// (tests/variants_main.cpp), a downstream-style main around cli_main, and this
// test drives it as test_cli drives tapegrad. A variant without an optional
// capability (cached forward, bilinear heads, converter) must still run every
// subcommand, saying once what it skips and why.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <unistd.h>

#include "cli_run.h"

namespace fs = std::filesystem;

namespace {

using Out = tg::test::CliResult;
using tg::test::run;

// A fresh folder per test case (ctest runs cases in parallel processes).
std::string fresh_dir(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("tapegrad_variants_" + std::to_string(::getpid())) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d.string();
}

size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + what.size())) ++n;
    return n;
}

std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// One full epoch of the tiny preset with default flags, probe on.
const std::string kEpoch = "--preset tiny --epochs 1 --probe-every 5 --quiet ";
const std::string kProbeNote = "exposes no bilinear heads";
constexpr int kTimeout = 500;  // a hang fails the case instead of ctest's run

}  // namespace

TEST_CASE("a variant with no optional capability trains, compares, sweeps, generates and reports",
          "[variants][cli]") {
    std::string d = fresh_dir("bare");
    Out tr = run("train " + kEpoch + "--attention bare --out " + d + "/train/bare --save " + d +
                     "/bare.safetensors",
                 "", "", kTimeout);
    INFO("train: " << tr.text);
    REQUIRE(tr.code == 0);
    CHECK(count(tr.text, kProbeNote) == 1);  // the probe is skipped, said once, with the reason
    CHECK(count(tr.text, "attention 'bare'") == 1);
    CHECK(fs::exists(d + "/train/bare/summary.json"));
    CHECK(fs::exists(d + "/train/bare/metrics.csv"));
    CHECK_FALSE(fs::exists(d + "/train/bare/dynamics.csv"));
    auto summary = nlohmann::json::parse(read(d + "/train/bare/summary.json"));
    CHECK(summary.dump().find("bare") != std::string::npos);

    Out rep = run("report " + d + "/train", "", "", kTimeout);
    INFO("report: " << rep.text);
    CHECK(rep.code == 0);
    CHECK(fs::exists(d + "/train/report.md"));

    Out gen = run("generate --checkpoint " + d + "/bare.safetensors --max-new-tokens 5", "", "", kTimeout);
    INFO("generate: " << gen.text);
    CHECK(gen.code == 0);
    CHECK_THAT(gen.text, Catch::Contains("Every effort moves you"));

    Out cmp = run("compare --preset tiny --epochs 1 --quiet --variants bare mha --out " + d + "/compare", "",
                  "", kTimeout);
    INFO("compare: " << cmp.text);
    CHECK(cmp.code == 0);
    CHECK(count(cmp.text, kProbeNote) == 1);  // bare's probe skipped; mha's probed
    CHECK(fs::exists(d + "/compare/report.md"));
    CHECK(fs::exists(d + "/compare/mha/dynamics.csv"));

    Out sw = run("sweep --preset tiny --max-steps 3 --eval-freq 1 --eval-iter 1 --quiet --variants bare "
                 "--lrs 0.0004 --out " +
                     d + "/sweep",
                 "", "", kTimeout);
    INFO("sweep: " << sw.text);
    CHECK(sw.code == 0);
    CHECK(count(sw.text, kProbeNote) <= 1);
    CHECK(fs::exists(d + "/sweep/report.md"));

    // What needs a capability it lacks is refused by name, not silently applied.
    Out qk = run("train --preset tiny --max-steps 1 --quiet --attention bare --qk-dim 8", "", "", kTimeout);
    CHECK(qk.code != 0);
    CHECK_THAT(qk.text, Catch::Contains("qk_dim") && Catch::Contains("'bare'"));
}

TEST_CASE("every registered variant trains a full tiny epoch with the probe and reports", "[variants][cli]") {
    std::string d = fresh_dir("all");
    // A test may name them: the built-in two, the in-tree and downstream examples, bare.
    for (std::string v : {"mha", "alt1", "lowrank", "tied", "bare"}) {
        Out o = run("train " + kEpoch + "--attention " + v + " --out " + d + "/" + v, "", "", kTimeout);
        INFO(v << ": " << o.text);
        REQUIRE(o.code == 0);
        CHECK(fs::exists(d + "/" + v + "/summary.json"));
        bool bilinear = v != "lowrank" && v != "bare";
        CHECK(fs::exists(d + "/" + v + "/dynamics.csv") == bilinear);
        CHECK(count(o.text, kProbeNote) == (bilinear ? 0u : 1u));
    }
    Out rep = run("report " + d, "", "", kTimeout);
    INFO("report: " << rep.text);
    CHECK(rep.code == 0);
    std::string md = read(d + "/report.md");
    for (const char* v : {"mha", "alt1", "lowrank", "tied", "bare"}) CHECK_THAT(md, Catch::Contains(v));
}
