#include "train/data/prepare.h"

#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <optional>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "core/parallel.h"
#include "models/safetensors.h"
#include "train/data/shards.h"
#include "train/data/vocab_map.h"
#include "train/io/json_text.h"
#include "train/data/text_loader.h"
#include "train/run/folder_lock.h"

namespace tg::train {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr size_t kBatchBytes = 8 << 20;  // documents tokenized together (bounds memory)

struct Source {
    std::string name;  // as shown in the manifest: the path, or "-" for stdin
    bool stdin_ = false;
};

// Is `p` (canonical) `dir` or inside it?
bool inside(const fs::path& p, const fs::path& dir) {
    auto [d, q] = std::mismatch(dir.begin(), dir.end(), p.begin(), p.end());
    return d == dir.end();
}

// Files of the inputs in a stable order: each input as given, directory trees
// walked recursively with entries sorted by path. The output folder is never an
// input: an input inside --out is refused (prepare would read its own shards
// and manifest back in), and a walked tree skips --out when it holds it.
std::vector<Source> collect_sources(const std::vector<std::string>& inputs, const std::string& out_dir) {
    if (inputs.empty()) throw Error("tapegrad prepare: --input: give at least one file, directory or -");
    const fs::path out = fs::weakly_canonical(out_dir);
    std::vector<Source> sources;
    for (const auto& in : inputs) {
        if (in == "-") {
            sources.push_back({"-", true});
            continue;
        }
        std::error_code ec;
        auto st = fs::status(in, ec);
        if (ec || !fs::exists(st))
            throw Error(fmt::format("tapegrad prepare: --input '{}': no such file or directory", in));
        if (inside(fs::weakly_canonical(in), out))
            throw Error(fmt::format("tapegrad prepare: --input '{}' is inside --out '{}': prepare would read "
                                    "its own output back in; choose an --out outside the inputs",
                                    in, out_dir));
        if (fs::is_directory(st)) {
            std::vector<std::string> files;
            for (auto it = fs::recursive_directory_iterator(in); it != fs::recursive_directory_iterator();
                 ++it) {
                if (it->is_directory() && fs::weakly_canonical(it->path()) == out) {
                    it.disable_recursion_pending();  // our own output folder
                    continue;
                }
                if (it->is_regular_file()) files.push_back(it->path().string());
            }
            std::sort(files.begin(), files.end());
            for (auto& f : files) sources.push_back({f, false});
        } else {
            sources.push_back({in, false});
        }
    }
    return sources;
}

std::string read_source(const Source& s) {
    if (s.stdin_) return {std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
    return read_text_file(s.name);
}

}  // namespace

std::vector<std::string> split_documents(const std::string& text, const std::string& source,
                                         const PrepareOptions& o) {
    if (o.format == "file") return {text};
    if (o.format == "brown") return {brown_to_text(text)};
    std::vector<std::string> docs;
    std::istringstream in(text);
    std::string line;
    for (int64_t lineno = 1; std::getline(in, line); ++lineno) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        if (o.format == "lines") {
            docs.push_back(line);
            continue;
        }
        json j;
        try {
            j = json::parse(line);
        } catch (const json::exception& e) {  // parse_error, and out_of_range for a number's overflow
            throw Error(
                fmt::format("tapegrad prepare: {}:{}: not a JSON line ({})", source, lineno, e.what()));
        }
        if (!j.is_object() || !j.contains(o.text_field) || !j[o.text_field].is_string())
            throw Error(
                fmt::format("tapegrad prepare: {}:{}: expected a JSON object with a string field '{}' "
                            "(--text-field)",
                            source, lineno, o.text_field));
        docs.push_back(j[o.text_field].get<std::string>());
    }
    return docs;
}

namespace {

uint32_t crc32_of(const std::string& bytes) {
    return static_cast<uint32_t>(
        ::crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

std::string hex32(uint32_t v) { return fmt::format("{:08x}", v); }

// Fills shards of one split and writes each when it is full.
struct SplitWriter {
    SplitWriter(std::string s, std::string d, int64_t n)
        : split(std::move(s)), dir(std::move(d)), shard_tokens(n) {}
    std::string split, dir;
    int64_t shard_tokens;
    std::vector<uint16_t> buf;
    int64_t docs_in_buf = 0, index = 0, tokens = 0, documents = 0;
    json shards = json::array();
    std::set<std::string> written;

    void add_document(const std::vector<int64_t>& ids) {
        ++documents;
        ++docs_in_buf;
        append(Tokenizer::kEndOfText);
        for (int64_t id : ids) append(id);
    }
    void append(int64_t id) {
        buf.push_back(static_cast<uint16_t>(id));  // GPT-2 ids < 50257 fit uint16
        ++tokens;
        if (static_cast<int64_t>(buf.size()) == shard_tokens) flush();
    }
    void flush() {
        if (buf.empty()) return;
        std::string name = fmt::format("{}_{:06d}.bin", split, index++);
        std::string bytes = shards::encode_shard(buf);
        models::write_file_atomic(dir + "/" + name, bytes);
        shards.push_back({{"file", name},
                          {"split", split},
                          {"tokens", buf.size()},
                          {"documents_starting", docs_in_buf},
                          {"crc32", hex32(crc32_of(bytes))}});
        written.insert(name);
        buf.clear();
        docs_in_buf = 0;
    }
};

// --vocab compact: every written shard relabelled to dense ids (the sorted
// distinct GPT-2 ids of all of them), its checksum updated in `shards`.
VocabMap compact_shards(const std::string& dir, json& shards) {
    std::vector<bool> used(65536, false);
    for (const json& s : shards)
        for (uint16_t id : shards::read_shard(dir + "/" + s["file"].get<std::string>())) used[id] = true;
    std::vector<int64_t> ids;
    for (size_t i = 0; i < used.size(); ++i)
        if (used[i]) ids.push_back(static_cast<int64_t>(i));
    VocabMap map(ids);
    for (json& s : shards) {
        std::string path = dir + "/" + s["file"].get<std::string>();
        std::vector<uint16_t> tok = shards::read_shard(path);
        for (uint16_t& t : tok) t = static_cast<uint16_t>(map.to_dense(t));
        std::string bytes = shards::encode_shard(tok);
        models::write_file_atomic(path, bytes);
        s["crc32"] = hex32(crc32_of(bytes));
    }
    return map;
}

// The new set is written into OUT/.prepare.tmp and moved into OUT only once
// every shard and the manifest are written, so a prepare that fails (no
// documents, a full disk) leaves the old set as it was. The moves are renames
// on one file system, the manifest last: a kill between them leaves shards
// that the old manifest's checksums refuse (train/data/shard_loader.h).
struct WorkDir {
    explicit WorkDir(const std::string& out_dir) : out(out_dir), dir(out_dir + "/.prepare.tmp") {
        fs::remove_all(dir);  // a dead prepare's (we hold the folder's lock)
        fs::create_directory(dir);
    }
    ~WorkDir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    void commit(const std::set<std::string>& written) const {
        for (const auto& name : written) fs::rename(fs::path(dir) / name, fs::path(out) / name);
        // Shards of an earlier run into the same folder that this run did not write.
        const std::regex ours("(train|val)_[0-9]{6}\\.bin");
        for (const auto& e : fs::directory_iterator(out)) {
            std::string name = e.path().filename().string();
            if (std::regex_match(name, ours) && !written.count(name)) fs::remove(e.path());
        }
        fs::rename(fs::path(dir) / "manifest.json", fs::path(out) / "manifest.json");
    }
    std::string out, dir;
};

void check_options(const PrepareOptions& o) {
    if (o.vocab != "gpt2" && o.vocab != "compact")
        throw Error(fmt::format("tapegrad prepare: --vocab '{}': expected gpt2 or compact", o.vocab));
    if (o.out_dir.empty()) throw Error("tapegrad prepare: --out: give the output directory");
    if (o.format != "file" && o.format != "lines" && o.format != "jsonl" && o.format != "brown")
        throw Error(
            fmt::format("tapegrad prepare: --format '{}': expected file, lines, jsonl or brown", o.format));
    if (!(o.val_fraction >= 0 && o.val_fraction <= 1))
        throw Error(fmt::format("tapegrad prepare: --val-fraction {} is outside [0, 1]", o.val_fraction));
    if (o.shard_tokens < 1 || o.shard_tokens > INT32_MAX)
        throw Error(fmt::format("tapegrad prepare: --shard-tokens {} is outside [1, 2^31)", o.shard_tokens));
}

}  // namespace

bool goes_to_val(const std::string& doc, uint64_t seed, double val_fraction) {
    uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a-64 over the seed's 8 bytes, then the document's
    auto eat = [&h](unsigned char c) { h = (h ^ c) * 0x100000001B3ull; };
    for (int i = 0; i < 8; ++i) eat(static_cast<unsigned char>(seed >> (8 * i)));
    for (unsigned char c : doc) eat(c);
    h += 0x9E3779B97F4A7C15ull;  // SplitMix64's finaliser spreads FNV's weak high bits
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    h ^= h >> 31;
    double u = static_cast<double>(h >> 11) * 0x1.0p-53;
    return u < val_fraction;
}

std::string brown_to_text(const std::string& tagged) {
    // Punctuation that hugs the word before it, and openers that hug the next.
    static const std::set<std::string> left = {",", ".", ";", ":", "?", "!", ")", "''", "'"};
    static const std::set<std::string> right = {"``", "("};
    std::string out;
    std::istringstream lines(tagged);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream toks(line);
        std::string tok, sentence;
        bool glue = true;  // no space before the next word
        while (toks >> tok) {
            size_t slash = tok.rfind('/');
            std::string w = slash == std::string::npos || slash == 0 ? tok : tok.substr(0, slash);
            bool l = left.count(w) > 0, r = right.count(w) > 0;
            if (!glue && !l) sentence += ' ';
            if (w == "``" || w == "''")
                sentence += '"';
            else
                sentence += w;
            glue = r;
        }
        if (sentence.empty()) continue;
        if (!out.empty()) out += ' ';
        out += sentence;
    }
    return out;
}

PrepareResult prepare(const PrepareOptions& o, std::ostream& warnings) {
    check_options(o);
    auto t0 = std::chrono::steady_clock::now();
    std::string enc_path = o.vocab_dir + "/encoder.json", bpe_path = o.vocab_dir + "/vocab.bpe";
    Tokenizer tok(enc_path, bpe_path);
    FolderLock lock(o.out_dir, "prepare --out");  // one prepare per folder; a killed one's lock is gone
    std::vector<Source> sources = collect_sources(o.inputs, o.out_dir);
    WorkDir work(o.out_dir);
    SplitWriter train("train", work.dir, o.shard_tokens), val("val", work.dir, o.shard_tokens);
    PrepareResult res;
    json source_list = json::array();
    bool show = o.progress && isatty(STDERR_FILENO);

    // Documents wait here until kBatchBytes have gathered, then are tokenized on
    // all threads and appended in their input order.
    std::vector<std::string> pending;
    size_t pending_bytes = 0;
    auto drain = [&]() {
        std::vector<std::vector<int64_t>> ids(pending.size());
        if (pending.size() == 1) {
            ids[0] = tok.encode_parallel(pending[0]);  // one large document: split inside it
        } else {
            std::vector<std::string> errors(pending.size());
            parallel_for(static_cast<int64_t>(pending.size()), 1, [&](int64_t b, int64_t e) {
                for (int64_t i = b; i < e; ++i) try {
                        ids[i] = tok.encode(pending[i]);
                    } catch (const std::exception& ex) {  // never throw inside a parallel loop
                        errors[i] = ex.what();
                    }
            });
            for (auto& err : errors)
                if (!err.empty()) throw Error(err);
        }
        for (size_t i = 0; i < pending.size(); ++i)
            (goes_to_val(pending[i], o.seed, o.val_fraction) ? val : train).add_document(ids[i]);
        pending.clear();
        pending_bytes = 0;
        if (show) {
            double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::cerr << fmt::format("\r\033[Kprepare: {} documents, {:.1f} MB, {} tokens, {:.1f} MB/s",
                                     train.documents + val.documents, static_cast<double>(res.bytes) / 1e6,
                                     train.tokens + val.tokens, static_cast<double>(res.bytes) / 1e6 / s)
                      << std::flush;
        }
    };

    for (const auto& src : sources) {
        std::string text = read_source(src);
        res.bytes += static_cast<int64_t>(text.size());
        std::vector<std::string> docs;
        if (text.find_first_not_of(" \t\r\n") != std::string::npos) docs = split_documents(text, src.name, o);
        docs.erase(std::remove_if(docs.begin(), docs.end(), [](const std::string& d) { return d.empty(); }),
                   docs.end());
        if (docs.empty()) {
            warnings << fmt::format("tapegrad prepare: warning: '{}' is empty (no documents), skipped\n",
                                    src.name);
            source_list.push_back(
                {{"path", src.name}, {"bytes", text.size()}, {"documents", 0}, {"skipped", true}});
            continue;
        }
        source_list.push_back({{"path", src.name}, {"bytes", text.size()}, {"documents", docs.size()}});
        ++res.sources;
        for (auto& d : docs) {
            pending_bytes += d.size();
            pending.push_back(std::move(d));
            if (pending_bytes >= kBatchBytes) drain();
        }
    }
    if (!pending.empty()) drain();
    if (show) std::cerr << "\r\033[K";
    train.flush();
    val.flush();
    if (train.documents == 0)
        throw Error("tapegrad prepare: no training documents: every input was empty or went to val "
                    "(--val-fraction)");
    if (o.val_fraction > 0 && val.documents == 0)
        warnings
            << "tapegrad prepare: warning: no document went to val (too few documents for --val-fraction)\n";

    json shards = train.shards;
    for (auto& s : val.shards) shards.push_back(s);
    std::optional<VocabMap> compact;
    if (o.vocab == "compact") compact = compact_shards(work.dir, shards);  // the new set, still in the work folder
    json manifest = {
        {"format",
         {{"name", "llm.c token shards"},
          {"magic", shards::kMagic},
          {"version", shards::kVersion},
          {"header", "256 little-endian int32: magic, version, token count"},
          {"tokens", "little-endian uint16"}}},
        {"tokenizer",
         {{"name", "gpt2"},
          {"eot", Tokenizer::kEndOfText},
          {"document_start", "<|endoftext|> then encode_ordinary(document)"},
          {"encoder.json crc32", hex32(crc32_of(read_text_file(enc_path)))},
          {"vocab.bpe crc32", hex32(crc32_of(read_text_file(bpe_path)))}}},
        {"format_of_inputs", o.format},
        {"split_rule",
         {{"rule", "val when FNV-1a-64(seed bytes, document bytes) mixed by SplitMix64, top 53 bits / 2^53 < "
                   "val_fraction"},
          {"seed", o.seed},
          {"val_fraction", o.val_fraction}}},
        {"shard_tokens", o.shard_tokens},
        {"sources", source_list},
        {"documents", {{"train", train.documents}, {"val", val.documents}}},
        {"tokens", {{"train", train.tokens}, {"val", val.tokens}}},
        {"shards", shards}};
    if (o.format == "jsonl") manifest["text_field"] = o.text_field;
    if (compact) {
        manifest["vocabulary"] = json::parse(compact->to_json());
        manifest["tokenizer"]["eot"] = compact->to_dense(Tokenizer::kEndOfText);
        manifest["tokenizer"]["eot_gpt2"] = Tokenizer::kEndOfText;
    } else {
        manifest["vocabulary"] = {{"kind", "gpt2"}, {"size", 50257}};
    }
    write_json_file(work.dir + "/manifest.json", manifest);  // any bytes (a file name) as U+FFFD
    std::set<std::string> written = train.written;
    written.insert(val.written.begin(), val.written.end());
    work.commit(written);

    res.documents_train = train.documents;
    res.documents_val = val.documents;
    res.tokens_train = train.tokens;
    res.tokens_val = val.tokens;
    res.shards = static_cast<int64_t>(shards.size());
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
}

}  // namespace tg::train
