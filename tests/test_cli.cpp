// The tapegrad executable: --help everywhere, bad input gives a clear message and
// a non-zero exit, nothing half-written; tokenize round trip.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sys/wait.h>

#include "cli_run.h"
#include "models/generate.h"
#include "models/gpt2_hf.h"
#include "models/safetensors.h"
#include "test_util.h"
#include "train/io/csv.h"
#include "train/tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace {

using Out = tg::test::CliResult;
using tg::test::run;

std::string tmp(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("tapegrad_cli_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return (d / name).string();
}

const std::string kSmall = "--preset tiny --context-length 16 --emb-dim 16 --n-heads 2 --n-layers 1 --quiet ";

}  // namespace

TEST_CASE("every subcommand has --help", "[cli]") {
    for (const char* sub :
         {"train", "compare", "generate", "tokenize", "prepare", "report", "sweep", "convert"}) {
        Out o = run(std::string(sub) + " --help");
        INFO(sub << ": " << o.text);
        CHECK(o.code == 0);
        CHECK_THAT(o.text, Catch::Contains("Usage") || Catch::Contains("OPTIONS"));
    }
    Out o = run("train --help");
    for (const char* flag :
         {"--preset",    "--attention",  "--emb-dim",      "--n-heads",   "--n-layers",    "--context-length",
          "--qkv-bias",  "--out-proj",   "--data",         "--epochs",    "--max-steps",   "--batch-size",
          "--optimizer", "--lr",         "--weight-decay", "--warmup",    "--min-lr",      "--clip",
          "--seed",      "--drop-rate",  "--eval-freq",    "--eval-iter", "--threads",     "--no-shuffle",
          "--init-from", "--save",       "--resume",       "--out",       "--probe-every", "--detect-anomaly",
          "--profile",   "--max-length", "--qk-dim"})
        CHECK_THAT(o.text, Catch::Contains(flag));
    CHECK_THAT(run("compare --help").text, Catch::Contains("--fork-at") && Catch::Contains("--qk-dim"));
    CHECK_THAT(run("convert --help").text, Catch::Contains("--to") && Catch::Contains("AdamW state"));
    Out g = run("generate --help");
    for (const char* flag : {"--checkpoint", "--gpt2", "--attention", "--n-heads", "--eos-id",
                             "--no-kv-cache", "--stream", "--threads"})
        CHECK_THAT(g.text, Catch::Contains(flag));
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

namespace {

// A tiny GPT-2 in the Hugging Face layout (the tiny preset's shape with qkv_bias and
// GPT-2's vocab), written by the inverse mapping; 4 heads is none of OpenAI's sizes.
std::string tiny_hf_file(tg::models::GPTConfig* cfg_out = nullptr) {
    tg::models::GPTConfig c = tg::models::preset("tiny");
    c.qkv_bias = true;
    c.drop_rate = 0;
    tg::manual_seed(21);
    tg::models::GPTModel m(c);
    std::string path = tmp("tiny_hf.safetensors");
    tg::models::save_gpt2_hf(path, m, "transformer.", true);
    if (cfg_out) *cfg_out = c;
    return path;
}

}  // namespace

TEST_CASE("generate --gpt2: a Hugging Face file, KV cache on and off, alt1, eos, streaming",
          "[cli][gpt2_hf]") {
    std::string hf = tiny_hf_file();
    std::string base = "generate --gpt2 " + hf + " --n-heads 4 --prompt 'Every effort moves you' ";
    Out cached = run(base + "--max-new-tokens 80");  // 5 + 80 > context 64: the cache restarts
    REQUIRE(cached.code == 0);
    CHECK_THAT(cached.text, Catch::StartsWith("Every effort moves you"));
    Out plain = run(base + "--max-new-tokens 80 --no-kv-cache");
    CHECK(plain.text == cached.text);
    Out alt1 = run(base + "--max-new-tokens 80 --attention alt1");
    CHECK(alt1.text == cached.text);
    // streaming prints the same text, token by token, and a rate line
    Out streamed = run(base + "--max-new-tokens 80 --stream");
    CHECK(streamed.code == 0);
    CHECK_THAT(streamed.text, Catch::StartsWith(cached.text.substr(0, cached.text.size() - 1)) &&
                                  Catch::Contains("80 new tokens") &&
                                  Catch::Contains("tokens/s, KV cache on"));
    // --eos-id: stop at the first generated token, so only the prompt remains
    tg::models::MappedSafeTensors st(hf);
    tg::models::GPTModel m(tg::models::gpt2_hf_config(st, 4));
    tg::models::load_gpt2_hf(m, st);
    tg::train::Tokenizer tok(tg::test::source_path("data/encoder.json"),
                             tg::test::source_path("data/vocab.bpe"));
    auto ids = tg::models::generate(m, tok.encode("Every effort moves you", true), {.max_new_tokens = 1});
    Out eos = run(base + "--max-new-tokens 20 --eos-id " + std::to_string(ids.back()));
    CHECK(eos.code == 0);
    CHECK(eos.text == "Every effort moves you\n");
    // errors name the flag or the file
    Out both = run("generate --gpt2 " + hf + " --checkpoint " + hf);
    CHECK(both.code == 1);
    CHECK_THAT(both.text, Catch::Contains("exactly one of --checkpoint"));
    Out heads = run("generate --gpt2 " + hf);
    CHECK(heads.code == 1);
    CHECK_THAT(heads.text, Catch::Contains("none of OpenAI's GPT-2 sizes") && Catch::Contains("--n-heads"));
    std::string ck = tmp("not_hf.safetensors");
    REQUIRE(run("train --max-steps 1 --eval-freq 0 --save " + ck + " " + kSmall).code == 0);
    Out wrong = run("generate --gpt2 " + ck);
    CHECK(wrong.code == 1);
    CHECK_THAT(wrong.text, Catch::Contains("not the Hugging Face GPT-2 layout"));
    fs::remove_all(fs::path(hf).parent_path());
}

TEST_CASE("train --init-from a Hugging Face file: shape from the file, weights as the book maps them",
          "[cli][gpt2_hf][train]") {
    tg::models::GPTConfig c;
    std::string hf = tiny_hf_file(&c);
    std::string ck = tmp("finetuned.safetensors");
    // lr 0: AdamW leaves the weights as loaded (weight decay is scaled by lr too)
    Out o = run("train --init-from " + hf +
                " --n-heads 4 --max-length 32 --max-steps 2 --eval-freq 1 --lr 0 "
                "--epochs 1 --quiet --save " +
                ck);
    INFO(o.text);
    REQUIRE(o.code == 0);
    auto saved = tg::models::read_safetensors(ck);
    tg::models::MappedSafeTensors st(hf);
    std::vector<float> scratch;
    const float* wte = st.f32(*st.find("transformer.wte.weight"), scratch);
    std::vector<float> want(wte, wte + c.vocab_size * c.emb_dim);
    CHECK(saved.get("tok_emb.weight").to_vector() == want);
    CHECK(saved.get("out_head.weight").to_vector() == want);
    CHECK(saved.get("trf_blocks.0.att.W_query.bias").numel() == c.emb_dim);  // qkv_bias from the file
    CHECK_THAT(saved.metadata.at("tapegrad.config"), Catch::Contains("\"context_length\":64"));
    // alt1 fine-tunes the merged form of the same model
    Out a = run("train --init-from " + hf +
                " --attention alt1 --n-heads 4 --max-length 32 --max-steps 1 "
                "--eval-freq 0 --quiet");
    CHECK(a.code == 0);
    // shape flags contradict the file; a window longer than the context is refused
    Out bad = run("train --init-from " + hf + " --n-heads 4 --emb-dim 32 --max-steps 1 --quiet");
    CHECK(bad.code == 1);
    CHECK_THAT(bad.text, Catch::Contains("Hugging Face GPT-2 file") && Catch::Contains("--max-length"));
    Out longer = run("train --init-from " + hf + " --n-heads 4 --max-length 65 --max-steps 1 --quiet");
    CHECK(longer.code == 1);
    CHECK_THAT(longer.text, Catch::Contains("--max-length 65 exceeds the model's context_length 64"));
    fs::remove_all(fs::path(hf).parent_path());
}

TEST_CASE("sweep: flags from a TOML file, --max-runs, resume, --report-only, a bad variant", "[cli][sweep]") {
    std::string out = tmp("sweep");
    std::string toml = tmp("sweep.toml");
    std::ofstream(toml) << "variants = [\"mha\", \"alt1:out-proj=on\"]\nlrs = [0.0004]\nseeds = [1, 2]\n"
                           "max-steps = 2\neval-freq = 1\neval-iter = 1\nprobe-every = 1\n";
    std::string base = "sweep --config " + toml + " --out " + out + " " + kSmall;
    // Run from a folder without data/: the vocabulary is found as train's is (train/run/paths.h).
    Out a = run(base + " --max-runs 2", "", fs::temp_directory_path().string());
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
    // report.html: the evaluation runs, per seed the variants side by side
    CHECK_THAT(c.text, Catch::Contains("wrote " + out + "/report.html"));
    std::string html;
    std::getline(std::ifstream(out + "/report.html"), html, '\0');
    for (const char* name :
         {"mha seed 1", "alt1:out-proj=on seed 1", "mha seed 2", "alt1:out-proj=on seed 2"})
        CHECK_THAT(html, Catch::Contains(std::string("\"name\":\"") + name + "\""));
    Out bad = run("sweep --variants mha,alt1:bogus=1 --out " + tmp("sweep_bad") + " " + kSmall);
    CHECK(bad.code == 1);
    CHECK_THAT(bad.text, Catch::Contains("alt1:bogus=1") && Catch::Contains("not understood"));
    fs::remove_all(out);
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

TEST_CASE("train --sample-kv-cache: on by default, off, check (counts recorded in summary.json), a bad value "
          "refused",
          "[cli]") {
    for (std::string mode : {"", "off", "on", "check"}) {
        std::string out = tmp("sample_cache_" + (mode.empty() ? "default" : mode));
        std::string flag = mode.empty() ? "" : " --sample-kv-cache " + mode;
        Out t = run("train --epochs 1 --eval-freq 0" + flag + " --out " + out + " " + kSmall);
        INFO(t.text);
        REQUIRE(t.code == 0);
        std::ifstream in(out + "/summary.json");
        std::string summary((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::string want = mode.empty() ? "on" : mode;
        CHECK_THAT(summary, Catch::Contains("\"sample_kv_cache\": \"" + want + "\""));
        if (mode == "check")
            CHECK_THAT(summary, Catch::Contains("\"differ\": 0") && Catch::Contains("\"equal\": 1"));
    }
    Out bad = run("train --sample-kv-cache maybe " + kSmall);
    CHECK(bad.code != 0);
    CHECK_THAT(bad.text, Catch::Contains("--sample-kv-cache"));
    fs::remove_all(fs::path(tmp("x")).parent_path());
}

// The controls through the executable on the tiny preset: --qk-dim trains,
// saves, resumes only with the same R, generates; convert turns the checkpoint
// into alt1 and refuses the result as input; compare --fork-at runs and reports,
// and refuses a bad step.
TEST_CASE("the controls through the executable (tiny preset): --qk-dim, convert --to alt1, compare --fork-at",
          "[cli][controls]") {
    const std::string tiny = "--preset tiny --max-length 16 --eval-freq 2 --eval-iter 1 --quiet ";
    std::string ck = tmp("qk.safetensors");
    Out t = run("train --qk-dim 24 --max-steps 2 --save " + ck + " " + tiny);
    REQUIRE(t.code == 0);
    Out r = run("train --max-steps 3 --resume " + ck + " " + tiny);  // without --qk-dim: another model
    CHECK(r.code == 1);
    CHECK_THAT(r.text, Catch::Contains("qk_dim 24 in the file, 16 asked"));
    CHECK(run("train --qk-dim 24 --max-steps 3 --resume " + ck + " " + tiny).code == 0);
    Out g = run("generate --checkpoint " + ck + " --max-new-tokens 3");
    CHECK(g.code == 0);
    CHECK_THAT(g.text, Catch::StartsWith("Every effort moves you"));
    Out z = run("train --qk-dim 0 " + tiny);
    CHECK(z.code != 0);
    CHECK_THAT(z.text, Catch::Contains("--qk-dim") && Catch::Contains(">= 1"));
    Out a = run("train --attention alt1 --qk-dim 8 --max-steps 1 " + tiny);
    CHECK(a.code == 1);
    CHECK_THAT(a.text, Catch::Contains("sets the query/key width of attention mha"));
    std::string conv = tmp("qk_alt1.safetensors");
    Out c = run("convert " + ck + " " + conv + " --to alt1");
    CHECK(c.code == 0);
    CHECK_THAT(c.text, Catch::Contains("attention alt1 out_proj true"));
    CHECK(run("generate --checkpoint " + conv + " --max-new-tokens 3").code == 0);
    CHECK(run("train --attention alt1 --out-proj true --max-steps 1 --init-from " + conv + " " + tiny).code ==
          0);
    Out bad = run("convert " + conv + " " + tmp("never2.safetensors") + " --to alt1");
    CHECK(bad.code == 1);
    CHECK_THAT(bad.text, Catch::Contains("the input must be an mha model"));
    CHECK_FALSE(fs::exists(tmp("never2.safetensors")));
    std::string fork = tmp("fork");
    Out f0 = run("compare --fork-at 0 --max-steps 4 --out " + fork + " " + tiny);
    CHECK(f0.code == 1);
    CHECK_THAT(f0.text, Catch::Contains("--fork-at: must be a step >= 1"));
    Out fd = run("compare --fork-at 2 --drop-rate 0.1 --max-steps 4 --out " + fork + " " + tiny);
    CHECK(fd.code == 1);
    CHECK_THAT(fd.text, Catch::Contains("dropout 0"));
    // A fork at or past the run's last step is refused before anything is made.
    Out fl = run("compare --fork-at 4 --max-steps 4 --out " + fork + " " + tiny);
    CHECK(fl.code == 1);
    CHECK_THAT(fl.text, Catch::Contains("the fork must come before its last step"));
    CHECK_FALSE(fs::exists(fork));  // nor by the refusals above
    Out f = run("compare --fork-at 2 --max-steps 4 --probe-every 1 --out " + fork + " " + tiny);
    INFO(f.text);
    CHECK(f.code == 0);
    CHECK(fs::exists(fork + "/report.md"));
    CHECK(fs::exists(fork + "/alt1/summary.json"));
    CHECK(fs::exists(fork + "/mha/summary.json"));
    // alt1's dynamics.csv holds the trunk's pre-fork rows (steps 0, 1), the same
    // as mha's, then its own branch's (steps 2, 3).
    tg::train::Csv dm = tg::train::read_csv(fork + "/mha/dynamics.csv"),
                   da = tg::train::read_csv(fork + "/alt1/dynamics.csv");
    REQUIRE(dm.rows.size() == da.rows.size());
    size_t pre = 0;
    for (size_t i = 0; i < da.rows.size(); ++i) {
        INFO("dynamics row " << i);
        CHECK(da.at(i, "step") == dm.at(i, "step"));
        if (da.at(i, "step") >= 2) continue;
        ++pre;
        CHECK(da.at(i, "g_norm") == dm.at(i, "g_norm"));
        CHECK(da.at(i, "m_norm") == dm.at(i, "m_norm"));
    }
    CHECK(pre == dm.rows.size() / 2);  // steps 0, 1 of 0..3
    // The report describes alt1 as merged, from the fork on (not by the trunk's first row).
    std::string report;
    std::getline(std::ifstream(fork + "/report.md"), report, '\0');
    INFO(report);
    CHECK_THAT(report, Catch::Contains("- **alt1**: dM = dS^T is the only term") &&
                           Catch::Contains("(**alt1** from step 2, where it forked from the trunk") &&
                           Catch::Contains("| alt1 | 2 |") && !Catch::Contains("(**mha** from step"));
    fs::remove_all(fs::path(ck).parent_path());
}

// report.html of a real (tiny) compare; without d3 the report still writes its
// PNGs and report.md and says how to get the HTML; a wrong TAPEGRAD_D3 is named.
TEST_CASE("report: report.html beside the PNGs, and without d3 how to get it", "[cli][report][html]") {
    std::string out = tmp("html_compare");
    fs::remove_all(out);
    Out a = run("compare " + kSmall + "--max-steps 2 --eval-freq 1 --eval-iter 1 --probe-every 1 --data " +
                tg::test::source_path("data/the-verdict.txt") + " --out " + out);
    INFO(a.text);
    REQUIRE(a.code == 0);
    CHECK_THAT(a.text, Catch::Contains("wrote " + out + "/report.html"));
    std::string html;
    std::getline(std::ifstream(out + "/report.html"), html, '\0');
    CHECK_THAT(html, Catch::Contains("\"name\":\"mha\"") && Catch::Contains("\"name\":\"alt1\"") &&
                         Catch::Contains("d3") &&
                         Catch::Contains("\"columns\":[\"step\",\"layer\",\"head\""));
    fs::remove(out + "/report.html");
    fs::remove(out + "/loss.png");
    std::string old_xdg = std::getenv("XDG_DATA_DIRS") ? std::getenv("XDG_DATA_DIRS") : "";
    ::setenv("XDG_DATA_DIRS", tmp("no_share").c_str(), 1);  // a folder without javascript/d3
    ::unsetenv("TAPEGRAD_D3");
    Out b = run("report " + out);
    ::setenv("TAPEGRAD_D3", tmp("missing_d3.js").c_str(), 1);
    Out c = run("report " + out);
    ::unsetenv("TAPEGRAD_D3");
    if (old_xdg.empty())
        ::unsetenv("XDG_DATA_DIRS");
    else
        ::setenv("XDG_DATA_DIRS", old_xdg.c_str(), 1);
    INFO(b.text);
    CHECK(b.code == 0);
    CHECK(fs::exists(out + "/loss.png"));
    CHECK(fs::exists(out + "/report.md"));
    CHECK_FALSE(fs::exists(out + "/report.html"));
    CHECK_THAT(b.text,
               Catch::Contains("report.html not written") && Catch::Contains("apt-get install libjs-d3"));
    CHECK(c.code == 0);
    CHECK_THAT(c.text, Catch::Contains("TAPEGRAD_D3 is '" + tmp("missing_d3.js") + "', which is not a file"));
    fs::remove_all(out);
}
