// The tapegrad executable: --help everywhere, bad input gives a clear message and
// a non-zero exit, nothing half-written; tokenize round trip.
#include <catch2/catch.hpp>

#include <algorithm>
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
    for (const char* sub : {"train", "compare", "generate", "tokenize", "prepare", "report"}) {
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

TEST_CASE("prepare from stdin and files, then train --data DIR on the shards", "[cli][prepare]") {
    std::string verdict = tmp("verdict.txt"), empty = tmp("empty.txt"), shards = tmp("shards");
    fs::copy_file(tg::test::source_path("data/the-verdict.txt"), verdict,
                  fs::copy_options::overwrite_existing);
    std::ofstream(empty) << "";
    Out p = run("prepare --format lines --shard-tokens 3000 --quiet --input - " + verdict + " " + empty +
                    " --out " + shards,
                "A line from stdin.\nAnd another.\n");
    INFO(p.text);
    REQUIRE(p.code == 0);
    CHECK_THAT(p.text, Catch::Contains("empty.txt") && Catch::Contains("skipped"));
    CHECK(fs::exists(shards + "/train_000000.bin"));
    CHECK(fs::exists(shards + "/train_000001.bin"));
    CHECK(fs::exists(shards + "/val_000000.bin"));
    CHECK(fs::exists(shards + "/manifest.json"));
    std::string out = tmp("shard_run");
    Out t = run("train --data " + shards + " --max-steps 3 --eval-freq 2 --eval-iter 2 --out " + out + " " +
                kSmall);
    INFO(t.text);
    CHECK(t.code == 0);
    CHECK_THAT(t.text, Catch::Contains("3 steps"));
    CHECK(fs::exists(out + "/metrics.csv"));
    // Refusals: a missing input, a directory without shards, a context longer than a shard.
    Out m = run("prepare --input /nonexistent/corpus --out " + tmp("never"));
    CHECK(m.code == 1);
    CHECK_THAT(m.text, Catch::Contains("'/nonexistent/corpus'") && Catch::Contains("no such file"));
    std::string bare = tmp("bare");
    fs::create_directories(bare);
    Out b = run("train --data " + bare + " " + kSmall);
    CHECK(b.code == 1);
    CHECK_THAT(b.text, Catch::Contains("holds no token shards") && Catch::Contains("train_NNNNNN.bin"));
    Out c = run("train --data " + shards +
                " --preset tiny --context-length 5000 --emb-dim 16 --n-heads 2 "
                "--n-layers 1 --quiet");
    CHECK(c.code == 1);
    CHECK_THAT(c.text, Catch::Contains("train_000000.bin") && Catch::Contains("--context-length 5000"));
    fs::remove_all(fs::path(shards).parent_path());
}

TEST_CASE("tokenize on several threads prints the one-thread ids", "[cli]") {
    std::string text;
    std::ifstream f(tg::test::source_path("data/the-verdict.txt"));
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    Out one = run("tokenize --threads 1", text), two = run("tokenize --threads 2", text);
    CHECK(one.code == 0);
    CHECK(std::count(one.text.begin(), one.text.end(), '\n') == 5145);
    CHECK(two.text == one.text);
}
