// The tapegrad executable: --help everywhere, bad input gives a clear message and
// a non-zero exit, nothing half-written; tokenize round trip.
#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>

#include "test_util.h"

namespace fs = std::filesystem;

namespace {

struct Out {
    int code;
    std::string text;
};

Out run(const std::string& args, const std::string& stdin_text = "") {
    fs::path in = fs::temp_directory_path() / ("tapegrad_cli_in_" + std::to_string(::getpid()));
    std::ofstream(in.string()) << stdin_text;
    std::string cmd = std::string(TAPEGRAD_BIN) + " " + args + " < '" + in.string() + "' 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p);
    std::string text;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) text.append(buf.data(), n);
    int st = pclose(p);
    fs::remove(in);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, text};
}

std::string tmp(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("tapegrad_cli_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return (d / name).string();
}

const std::string kSmall = "--preset tiny --context-length 16 --emb-dim 16 --n-heads 2 --n-layers 1 --quiet ";

}  // namespace

TEST_CASE("every subcommand has --help", "[cli]") {
    for (const char* sub : {"train", "compare", "generate", "tokenize", "report", "sweep"}) {
        Out o = run(std::string(sub) + " --help");
        INFO(sub << ": " << o.text);
        CHECK(o.code == 0);
        CHECK_THAT(o.text, Catch::Contains("Usage") || Catch::Contains("OPTIONS"));
    }
    Out o = run("train --help");
    for (const char* flag :
         {"--preset",    "--attention", "--emb-dim",      "--n-heads",   "--n-layers",    "--context-length",
          "--qkv-bias",  "--out-proj",  "--data",         "--epochs",    "--max-steps",   "--batch-size",
          "--optimizer", "--lr",        "--weight-decay", "--warmup",    "--min-lr",      "--clip",
          "--seed",      "--drop-rate", "--eval-freq",    "--eval-iter", "--threads",     "--no-shuffle",
          "--init-from", "--save",      "--resume",       "--out",       "--probe-every", "--detect-anomaly",
          "--profile"})
        CHECK_THAT(o.text, Catch::Contains(flag));
}

TEST_CASE("bad flags print usage and fail", "[cli][errors]") {
    Out o = run("train --bogus 3");
    CHECK(o.code != 0);
    CHECK_THAT(o.text, Catch::Contains("--bogus"));
    Out o2 = run("train --optimizer adam");
    CHECK(o2.code != 0);
    CHECK_THAT(o2.text, Catch::Contains("--optimizer"));
    Out o3 = run("");
    CHECK(o3.code != 0);
    Out o4 = run("train --attention nope --max-steps 1 " + kSmall);
    CHECK(o4.code == 1);
    CHECK_THAT(o4.text, Catch::Contains("unknown attention 'nope'") && Catch::Contains("mha"));
}

TEST_CASE("missing data, too-short text and bad checkpoints: clear errors, nothing half-written",
          "[cli][errors]") {
    std::string out = tmp("run_missing");
    Out o = run("train --data /nonexistent.txt --out " + out + " " + kSmall);
    CHECK(o.code == 1);
    CHECK_THAT(o.text, Catch::Contains("cannot read data file '/nonexistent.txt'"));
    CHECK_FALSE(fs::exists(out));
    std::string shorty = tmp("short.txt");
    std::ofstream(shorty) << "Too short.";
    Out s = run("train --data " + shorty + " --save " + tmp("never.safetensors") + " " + kSmall);
    CHECK(s.code == 1);
    CHECK_THAT(s.text, Catch::Contains("fewer than one batch"));
    CHECK_FALSE(fs::exists(tmp("never.safetensors")));
    std::string junk = tmp("junk.safetensors");
    std::ofstream(junk) << "not a checkpoint at all";
    Out g = run("generate --checkpoint " + junk);
    CHECK(g.code == 1);
    CHECK_THAT(g.text, Catch::Contains("junk.safetensors") && Catch::Contains("header length"));
    Out m = run("generate --checkpoint /nonexistent.safetensors");
    CHECK(m.code == 1);
    CHECK_THAT(m.text, Catch::Contains("cannot open"));
    // a checkpoint of one config cannot resume another
    std::string ck = tmp("ck.safetensors");
    REQUIRE(run("train --max-steps 1 --eval-freq 0 --save " + ck + " " + kSmall).code == 0);
    Out r = run("train --max-steps 2 --resume " + ck +
                " --preset tiny --context-length 16 --emb-dim 32 --n-heads 2 "
                "--n-layers 1 --quiet");
    CHECK(r.code == 1);
    CHECK_THAT(r.text, Catch::Contains("was made with config"));
    Out gen = run("generate --checkpoint " + ck + " --max-new-tokens 3");
    CHECK(gen.code == 0);
    CHECK_THAT(gen.text, Catch::StartsWith("Every effort moves you"));
    fs::remove_all(fs::path(ck).parent_path());
}

TEST_CASE("tokenize: ids one per line, --decode inverts, --allow-special", "[cli]") {
    Out o = run("tokenize", "Hello, world!");
    CHECK(o.code == 0);
    CHECK(o.text == "15496\n11\n995\n0\n");
    Out d = run("tokenize --decode", o.text);
    CHECK(d.text == "Hello, world!");
    CHECK(run("tokenize --allow-special", "<|endoftext|>").text == "50256\n");
    CHECK(run("tokenize", "<|endoftext|>").text != "50256\n");
    Out bad = run("tokenize --decode", "12 x");
    CHECK(bad.code == 1);
    CHECK_THAT(bad.text, Catch::Contains("'x' is not a token id"));
}

TEST_CASE("sweep: flags from a TOML file, --max-runs, resume, --report-only, a bad variant", "[cli][sweep]") {
    std::string out = tmp("sweep");
    std::string toml = tmp("sweep.toml");
    std::ofstream(toml) << "variants = [\"mha\", \"alt1:out-proj=on\"]\nlrs = [0.0004]\nseeds = [1, 2]\n"
                           "max-steps = 2\neval-freq = 1\neval-iter = 1\nprobe-every = 1\n";
    std::string base = "sweep --config " + toml + " --out " + out + " " + kSmall;
    Out a = run(base + " --max-runs 2");
    INFO(a.text);
    CHECK(a.code == 0);
    CHECK_THAT(a.text, Catch::Contains("trained 2 run(s) now, 2 finished"));
    CHECK_FALSE(fs::exists(out + "/report.md"));
    Out b = run(base);
    INFO(b.text);
    CHECK(b.code == 0);
    CHECK_THAT(b.text, Catch::Contains("trained 2 run(s) now, 4 finished"));
    CHECK(fs::exists(out + "/runs/alt1+out-proj=on/lr4e-04/seed2/done.json"));
    CHECK(fs::exists(out + "/report.md"));
    fs::remove(out + "/report.md");
    Out c = run(base + " --report-only");
    CHECK(c.code == 0);
    CHECK(fs::exists(out + "/report.md"));
    std::string report;
    std::getline(std::ifstream(out + "/report.md"), report, '\0');
    CHECK_THAT(report, Catch::Contains("reuses the selection seeds"));  // no --eval-seeds given
    Out bad = run("sweep --variants mha,alt1:bogus=1 --out " + tmp("sweep_bad") + " " + kSmall);
    CHECK(bad.code == 1);
    CHECK_THAT(bad.text, Catch::Contains("alt1:bogus=1") && Catch::Contains("not understood"));
    fs::remove_all(out);
}
