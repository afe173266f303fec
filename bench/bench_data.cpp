// The data path: tokenizer throughput (English text and adversarial inputs,
// one thread and all threads) against npm tiktoken on the same bytes in the
// same run (tools/bench_tiktoken.mjs), `prepare` end to end, and the shard
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
#include "train/data.h"
#include "train/prepare.h"
#include "train/shard_loader.h"
#include "train/shards.h"
#include "train/tokenizer.h"

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

// ~n bytes of English: the Brown Corpus as plain text if `make data` ran, else
// the-verdict.txt repeated (its pre-tokens then repeat, which flatters caches).
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
        what = "Brown Corpus text";
    }
    if (text.size() < n) {
        std::string v = train::read_text_file(src("data/the-verdict.txt"));
        while (text.size() < n) text += v;
        what = text.size() > v.size() && what.empty() ? "the-verdict.txt repeated" : what + " + verdict";
    }
    text.resize(n);
    return text;
}

struct Input {
    std::string name, bytes;
    size_t tiktoken_bytes;  // tiktoken merges one long pre-token in O(n^2): it gets a prefix of those
};

std::vector<Input> inputs(std::string& english_what) {
    const size_t MB = 1 << 20;
    std::vector<Input> v;
    v.push_back({"english", english(MB, english_what), MB});
    std::string rnd(MB, '\0');
    uint32_t x = 1;
    for (char& c : rnd) {
        x = x * 1664525u + 1013904223u;
        c = static_cast<char>(x >> 24);
    }
    v.push_back({"random bytes", rnd, MB});
    std::string nospace;
    for (char c : v[0].bytes)
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') nospace.push_back(c);
    while (nospace.size() < MB) nospace += nospace;
    nospace.resize(MB);
    v.push_back({"1 MB line, no spaces", nospace, MB});
    std::string letters;
    for (char c : v[0].bytes)
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) letters.push_back(c);
    while (letters.size() < MB) letters += letters;
    letters.resize(MB);
    v.push_back({"1 MB of letters (one pre-token)", letters, 32 << 10});
    v.push_back({"1 MB of 'a'", std::string(MB, 'a'), 32 << 10});
    return v;
}

// MB/s of npm tiktoken's gpt2 encode_ordinary on each file (prefix of max bytes),
// or -1 when node or the package is missing (`make tiktoken` installs it).
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

void bench_tokenizer(const Options& opt, const fs::path& tmp) {
    train::Tokenizer tok(src("data/encoder.json"), src("data/vocab.bpe"));
    std::string what;
    std::vector<Input> ins = inputs(what);
    std::vector<std::string> files;
    std::vector<size_t> caps;
    for (size_t i = 0; i < ins.size(); ++i) {
        files.push_back((tmp / fmt::format("tok_{}.txt", i)).string());
        std::ofstream(files.back(), std::ios::binary) << ins[i].bytes;
        caps.push_back(ins[i].tiktoken_bytes);
    }
    std::vector<double> tt = tiktoken_mbps(files, caps, opt.reps);
    int threads = num_threads();
    fmt::print("\ntokenizer: GPT-2 BPE of 1 MB inputs (english = {}), MB/s, best of {}; tiktoken = npm "
               "tiktoken 1.0.22 (WASM), one thread, same bytes\n",
               what, opt.reps);
    fmt::print("{:<34} {:>10} {:>14} {:>12} {:>14} {:>12}\n", "input", "1 thread",
               fmt::format("{} threads", threads), "tiktoken", "1 thr / tiktoken", "vs english");
    double english1 = 0;
    for (size_t i = 0; i < ins.size(); ++i) {
        const std::string& b = ins[i].bytes;
        double mb = static_cast<double>(b.size()) / 1e6;
        double one = best_of(opt.reps, [&] { tok.encode(b); });
        double all = best_of(opt.reps, [&] { tok.encode_parallel(b); });
        if (i == 0) english1 = mb / one;
        std::string ttxt = tt[i] < 0 ? "n/a" : fmt::format("{:.2f}{}", tt[i], caps[i] < b.size() ? "*" : "");
        std::string ratio = tt[i] < 0 ? "" : fmt::format("{:.2f}x", mb / one / tt[i]);
        fmt::print("{:<34} {:>10.2f} {:>14.2f} {:>12} {:>14} {:>11.2f}x\n", ins[i].name, mb / one, mb / all,
                   ttxt, ratio, mb / one / english1);
    }
    fmt::print("  * tiktoken on a {} KB prefix: its time grows with the square of one pre-token's length\n",
               caps.back() >> 10);
    if (tt[0] < 0)
        fmt::print("  (tiktoken n/a: run `make tiktoken` to install the npm package into tools/)\n");

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
