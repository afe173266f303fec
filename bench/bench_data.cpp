// The data path: tokenizer throughput (English text and adversarial inputs,
// one thread and all threads) against npm tiktoken on the same bytes in the
// same run (tools/bench_tiktoken.mjs), where one thread's time goes (the
// UTF-8 fix, pre-tokenisation, BPE), `prepare` end to end, and the shard
// loader's anonymous memory (RssAnon) over a 10 MB and a ~256 MB corpus of
// synthetic shards, with windows per second. Each loader size runs in its own
// process so its RssAnon is its own.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/bench.h"
#include "core/blas.h"
#include "core/tapegrad.h"
#include "train/data/text_loader.h"
#include "train/data/prepare.h"
#include "train/data/shard_loader.h"
#include "train/data/shards.h"
#include "train/tokenizer/tokenizer.h"

namespace tg::bench {
namespace fs = std::filesystem;
namespace {

std::string src(const std::string& rel) { return std::string(TAPEGRAD_SOURCE_DIR) + "/" + rel; }

double status_kb(const char* field) {  // a "Field:   123 kB" line of /proc/self/status
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(field, 0) == 0) return std::stod(line.substr(std::strlen(field)));
    return -1;
}

// Up to n bytes of English: the Brown Corpus as plain text (all of it, ~6 MB,
// if shorter) when `make data` ran, else the-verdict.txt repeated to n (its
// pre-tokens then repeat, which flatters the word cache).
std::string english(size_t n, std::string& what) {
    std::string text;
    fs::path brown = src("data/corpus/brown");
    if (fs::is_directory(brown)) {
        std::vector<std::string> files;
        for (auto& e : fs::directory_iterator(brown)) files.push_back(e.path().string());
        std::sort(files.begin(), files.end());
        for (auto& f : files) {
            if (text.size() >= n) break;
            text += train::brown_to_text(train::read_text_file(f)) + "\n";
        }
        what = fmt::format("Brown Corpus text, {:.1f} MB", static_cast<double>(text.size()) / 1e6);
    } else {
        std::string v = train::read_text_file(src("data/the-verdict.txt"));
        while (text.size() < n) text += v;
        what = "the-verdict.txt repeated";
    }
    if (text.size() > n) text.resize(n);
    return text;
}

// Each timed run encodes megabytes it has not seen: the word cache is per
// thread and kept across calls, so re-encoding one megabyte measured cache hits
// (English read 47 MB/s that way against ~30 MB/s on new text of the corpus).
struct Input {
    std::string name;
    std::vector<std::string> texts;  // one per run (best_of's warm-up, then the reps)
    size_t tiktoken_bytes;  // tiktoken merges one long pre-token in O(n^2): it gets a prefix of those
};

// `n` consecutive megabytes of `all` (wrapping if it is shorter).
std::vector<std::string> megabytes(const std::string& all, size_t n) {
    const size_t MB = 1 << 20;
    std::vector<std::string> v;
    for (size_t r = 0; r < n; ++r) {
        std::string t;
        for (size_t at = r * MB % all.size(); t.size() < MB; at = 0) t += all.substr(at, MB - t.size());
        v.push_back(t);
    }
    return v;
}

std::vector<Input> inputs(int runs, std::string& english_what) {
    const size_t MB = 1 << 20, n = static_cast<size_t>(runs);
    std::string text = english(n * MB * 3 / 2, english_what);  // the filtered inputs keep ~80% of it
    if (text.size() < n * MB)
        english_what += fmt::format(", so runs past the {}th MB see it again", text.size() / MB);
    std::vector<Input> v;
    v.push_back({"english", megabytes(text, n), MB});
    std::string rnd(n * MB, '\0');
    uint32_t x = 1;
    for (char& c : rnd) {
        x = x * 1664525u + 1013904223u;
        c = static_cast<char>(x >> 24);
    }
    v.push_back({"random bytes", megabytes(rnd, n), MB});
    std::string nospace, letters;
    for (char c : text) {
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') nospace.push_back(c);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) letters.push_back(c);
    }
    v.push_back({"1 MB line, no spaces", megabytes(nospace, n), MB});
    v.push_back({"1 MB of letters (one pre-token)", megabytes(letters, n), 32 << 10});
    v.push_back({"1 MB of 'a'", megabytes(std::string(MB, 'a'), n), 32 << 10});
    return v;
}

// MB/s of npm tiktoken's gpt2 encode_ordinary on each file (prefix of max bytes),
// or -1 when node or the package is missing, 0 where its line did not parse (`make tiktoken` installs it).
std::vector<double> tiktoken_mbps(const std::vector<std::string>& files, const std::vector<size_t>& max_bytes,
                                  int reps) {
    std::vector<double> out(files.size(), -1);
    if (!fs::exists(src("tools/node_modules/tiktoken"))) return out;
    std::string cmd = fmt::format("node {} --reps {}", src("tools/bench_tiktoken.mjs"), reps);
    for (size_t i = 0; i < files.size(); ++i) cmd += fmt::format(" {}:{}", files[i], max_bytes[i]);
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[256];
    for (size_t i = 0; i < files.size() && fgets(buf, sizeof buf, p); ++i) out[i] = std::atof(buf);
    pclose(p);
    return out;
}

// Encode times, best of the rounds, one thread and all threads, and per input
// the median over rounds of its one-thread MB/s over English's in the same round.
// `best` is the text (index into Input::texts) of the fastest one-thread run
// and `ids` what that run made, so the per-id figures divide matching numbers.
struct Rounds {
    std::vector<double> one, all, vs_english;
    std::vector<size_t> best, ids;
};
Rounds time_rounds(const train::Tokenizer& tok, const std::vector<Input>& ins, size_t reps) {
    // Every input once a round (machine noise then hits all inputs alike),
    // round 0 a warm-up; one thread, then all threads on the next megabytes.
    const size_t n_in = ins.size();
    Rounds r{std::vector<double>(n_in, 1e300),
             std::vector<double>(n_in, 1e300),
             {},
             std::vector<size_t>(n_in),
             std::vector<size_t>(n_in)};
    std::vector<std::vector<double>> paired(n_in);
    for (size_t run = 0; run <= 2 * reps + 1; ++run) {
        const bool parallel = run > reps;
        std::vector<double> secs(n_in);
        std::vector<size_t> ids(n_in);
        for (size_t i = 0; i < n_in; ++i) {
            const std::string& t = ins[i].texts[run % ins[i].texts.size()];
            auto t0 = std::chrono::steady_clock::now();
            ids[i] = parallel ? tok.encode_parallel(t).size() : tok.encode(t).size();
            secs[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
        if (run == 0 || run == reps + 1) continue;  // warm-ups
        for (size_t i = 0; i < n_in; ++i) {
            if (parallel) {
                r.all[i] = std::min(r.all[i], secs[i]);
                continue;
            }
            if (secs[i] < r.one[i]) {
                r.one[i] = secs[i];
                r.best[i] = run % ins[i].texts.size();
                r.ids[i] = ids[i];
            }
            paired[i].push_back(secs[0] / secs[i]);
        }
    }
    for (auto& v : paired) {
        std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
        r.vs_english.push_back(v[v.size() / 2]);
    }
    return r;
}

// Where one thread's time goes: the two stages before BPE timed on their own,
// making the text valid UTF-8 (invalid bytes -> U+FFFD) and finding its
// pre-tokens, on the megabyte whose encode set the one-thread best, best of
// rounds of their own (run before each encode, they evicted the tokenizer's
// tables and slowed English's encode by a third). The rest of that encode's
// time is BPE: the whole-token and word-cache lookups and the merges.
// In ms per MB of input, with what the megabyte makes: an input that makes
// more pre-tokens and ids a byte than English pays for each of them.
void print_stages(const std::vector<Input>& ins, const Rounds& r, size_t reps) {
    train::PreTokenizer pre;
    const size_t n_in = ins.size();
    std::vector<double> fix(n_in, 1e300), split(n_in, 1e300);
    std::vector<size_t> pretokens(n_in);
    for (size_t run = 0; run <= reps; ++run)  // round 0 a warm-up
        for (size_t i = 0; i < n_in; ++i) {
            const std::string& text = ins[i].texts[r.best[i]];
            auto t0 = std::chrono::steady_clock::now();
            const std::string valid = train::Tokenizer::sanitize_utf8(text);
            auto t1 = std::chrono::steady_clock::now();
            size_t n = 0;
            for (size_t pos = 0; pos < valid.size(); ++n) pos = pre.end_of(valid, pos);
            auto t2 = std::chrono::steady_clock::now();
            pretokens[i] = n;
            if (run == 0) continue;
            fix[i] = std::min(fix[i], std::chrono::duration<double>(t1 - t0).count());
            split[i] = std::min(split[i], std::chrono::duration<double>(t2 - t1).count());
        }
    fmt::print(
        "\nwhere one thread's time goes (ms per 10^6 bytes of input, best of the rounds, on the megabyte of "
        "the best encode; BPE = that encode less the two stages before it, `-` where noise made it "
        "negative)\n");
    fmt::print("{:<34} {:>10} {:>11} {:>8} {:>9} {:>14} {:>10}\n", "input", "UTF-8 fix", "pre-tokens", "BPE",
               "ids/MB", "pre-tokens/MB", "BPE ns/id");
    for (size_t i = 0; i < n_in; ++i) {
        const double mb = static_cast<double>(ins[i].texts[0].size()) / 1e6;
        const double bpe = r.one[i] - fix[i] - split[i];
        const std::string bpe_ms = bpe > 0 ? fmt::format("{:.2f}", 1e3 * bpe / mb) : "-";
        const std::string bpe_ns =
            bpe > 0 ? fmt::format("{:.1f}", 1e9 * bpe / static_cast<double>(r.ids[i])) : "-";
        fmt::print("{:<34} {:>10.2f} {:>11.2f} {:>8} {:>9.0f} {:>14.0f} {:>10}\n", ins[i].name,
                   1e3 * fix[i] / mb, 1e3 * split[i] / mb, bpe_ms, static_cast<double>(r.ids[i]) / mb,
                   static_cast<double>(pretokens[i]) / mb, bpe_ns);
    }
}

void bench_tokenizer(const Options& opt, const fs::path& tmp) {
    train::Tokenizer tok(src("data/encoder.json"), src("data/vocab.bpe"));
    std::string what;
    // Runs: a warm-up and reps, on one thread and then on all threads.
    std::vector<Input> ins = inputs(2 * (opt.reps + 1), what);
    std::vector<std::string> files;
    std::vector<size_t> caps;
    for (size_t i = 0; i < ins.size(); ++i) {
        files.push_back((tmp / fmt::format("tok_{}.txt", i)).string());
        std::ofstream(files.back(), std::ios::binary) << ins[i].texts[0];
        caps.push_back(ins[i].tiktoken_bytes);
    }
    std::vector<double> tt = tiktoken_mbps(files, caps, opt.reps);
    int threads = num_threads();
    fmt::print(
        "\ntokenizer: GPT-2 BPE of 1 MiB inputs (english = {}), MB/s (10^6 bytes), best of {} rounds over "
        "all inputs, each "
        "run on megabytes it has not seen; vs english: the median of the rounds' paired ratios; tiktoken = "
        "npm tiktoken 1.0.22 (WASM), one thread, the first megabyte\n",
        what, opt.reps);
    fmt::print("{:<34} {:>10} {:>14} {:>12} {:>14} {:>12} {:>12}\n", "input", "1 thread",
               fmt::format("{} threads", threads), "tiktoken", "1 thr / tiktoken", "vs english",
               "tiktoken vs");
    const size_t reps = static_cast<size_t>(std::max(opt.reps, 1));
    const Rounds r = time_rounds(tok, ins, reps);
    for (size_t i = 0; i < ins.size(); ++i) {
        const size_t size = ins[i].texts[0].size();
        double mb = static_cast<double>(size) / 1e6;
        std::string ttxt = tt[i] <= 0 ? "n/a" : fmt::format("{:.2f}{}", tt[i], caps[i] < size ? "*" : "");
        std::string ratio = tt[i] <= 0 ? "" : fmt::format("{:.2f}x", mb / r.one[i] / tt[i]);
        // tiktoken's own MB/s over its English MB/s (not on a prefix: that is another text)
        std::string own =
            tt[i] <= 0 || tt[0] <= 0 || caps[i] < size ? "-" : fmt::format("{:.2f}x", tt[i] / tt[0]);
        fmt::print("{:<34} {:>10.2f} {:>14.2f} {:>12} {:>14} {:>11.2f}x {:>12}\n", ins[i].name, mb / r.one[i],
                   mb / r.all[i], ttxt, ratio, r.vs_english[i], own);
    }
    fmt::print("  * tiktoken on a {} KB prefix: its time grows with the square of one pre-token's length\n",
               caps.back() >> 10);
    if (tt[0] <= 0)
        fmt::print("  (tiktoken n/a: run `make tiktoken` to install the npm package into tools/)\n");
    print_stages(ins, r, reps);

    // prepare end to end on the English megabyte, one document per line.
    train::PrepareOptions p;
    p.inputs = {files[0]};
    p.out_dir = (tmp / "prepared").string();
    p.vocab_dir = src("data");
    p.format = "lines";
    p.progress = false;
    std::ostringstream warn;
    double secs = best_of(opt.reps, [&] { train::prepare(p, warn); });
    fmt::print("prepare (--format lines, {} threads, 1 MB english incl. tokenizer load): {:.2f} MB/s\n",
               threads, 1.048576 / secs);
}

// Write `tokens` of synthetic shards (ids cycling below 50257) in 1M-token files.
void write_corpus(const fs::path& dir, int64_t tokens) {
    fs::create_directories(dir);
    const int64_t per = 1 << 20;
    std::vector<uint16_t> buf;
    for (int64_t done = 0, i = 0; done < tokens; done += per, ++i) {
        buf.resize(static_cast<size_t>(std::min(per, tokens - done)));
        for (size_t k = 0; k < buf.size(); ++k) buf[k] = static_cast<uint16_t>((done + k * 7919) % 50257);
        train::shards::write_shard((dir / fmt::format("train_{:06d}.bin", i)).string(), buf);
    }
}

std::vector<double> loader_in_child(const Options& opt, const fs::path& dir) {
    std::string cmd = fmt::format("{} --reps {} --child loader {}", opt.self, opt.reps, dir.string());
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) throw Error("bench: cannot run " + cmd);
    std::vector<double> v(4, -1);
    char buf[256];
    bool ok =
        fgets(buf, sizeof buf, p) && std::sscanf(buf, "%lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3]) == 4;
    if (pclose(p) != 0 || !ok) throw Error("bench: child failed: " + cmd);
    return v;
}

void bench_loader(const Options& opt, const fs::path& tmp) {
    fmt::print(
        "\nshard loader: batches of 8 x 256 windows in a shuffled order, memory-mapped shards; each size "
        "in a fresh process\n");
    fmt::print("{:<10} {:>10} {:>14} {:>14} {:>14} {:>12}\n", "corpus", "tokens", "RssAnon start",
               "RssAnon end", "RssFile end", "windows/s");
    for (int64_t mb : {10, 256}) {
        fs::path dir = tmp / fmt::format("corpus_{}mb", mb);
        int64_t tokens = mb * 1000 * 1000 / 2;
        write_corpus(dir, tokens);
        auto v = loader_in_child(opt, dir);
        fmt::print("{:<10} {:>10} {:>11.1f} MB {:>11.1f} MB {:>11.1f} MB {:>12.0f}\n",
                   fmt::format("{} MB", mb), tokens, v[0] / 1024, v[1] / 1024, v[2] / 1024, v[3]);
        fs::remove_all(dir);
    }
}

}  // namespace

int run_loader_child(const Options& opt, const std::string& dir) {
    double start = status_kb("RssAnon:");
    train::ShardDataset ds(train::shards::list_shards(dir, "train"), 256);
    train::ShardLoader loader(ds, 8, true, 1234);
    int64_t batches = std::min<int64_t>(loader.batches_per_epoch(), 4000);
    double secs = best_of(opt.reps > 1 ? 2 : 1, [&] {
        for (int64_t k = 0; k < batches; ++k) loader.batch(0, k);
    });
    std::printf("%.0f %.0f %.0f %.0f\n", start, status_kb("RssAnon:"), status_kb("RssFile:"),
                static_cast<double>(batches * 8) / secs);
    return 0;
}

void run_data(const Options& opt) {
    fs::path tmp = fs::temp_directory_path() / fmt::format("tapegrad_bench_data_{}", ::getpid());
    fs::create_directories(tmp);
    bench_tokenizer(opt, tmp);
    bench_loader(opt, tmp);
    fs::remove_all(tmp);
}

}  // namespace tg::bench
