// Token shards (llm.c's format), the memory-mapped loader and `prepare`:
// header round trip, shards written by llm.c's own writer, every refused file,
// windows and orders, rank slices, the fixed evaluation subset, identical bytes
// on rerun, the val split rule, and the bad inputs prepare must name.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "models/checkpoint.h"
#include "test_util.h"
#include "train/data/text_loader.h"
#include "train/data/prepare.h"
#include "train/data/shard_loader.h"
#include "train/data/shards.h"
#include "train/tokenizer/tokenizer.h"
#include "train/loop/trainer.h"
#include "train_test_util.h"

using namespace tg;
using namespace tg::train;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

fs::path scratch(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("tapegrad_shards_" + std::to_string(::getpid())) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, const std::string& bytes) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
}

const Tokenizer& gpt2() {
    static Tokenizer t(test::source_path("data/encoder.json"), test::source_path("data/vocab.bpe"));
    return t;
}

std::vector<int64_t> verdict_ids() {
    std::ifstream f(test::source_path("tests/fixtures/tokenizer.json"));
    return json::parse(f).at("verdict_ids").get<std::vector<int64_t>>();
}

std::vector<uint16_t> iota16(size_t n, uint16_t from = 0) {
    std::vector<uint16_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint16_t>(from + i);
    return v;
}

PrepareOptions prep(const fs::path& out, std::vector<std::string> inputs) {
    PrepareOptions o;
    o.inputs = std::move(inputs);
    o.out_dir = out.string();
    o.vocab_dir = test::source_path("data");
    o.progress = false;
    return o;
}

}  // namespace

TEST_CASE("a shard's header and tokens round-trip in llm.c's layout", "[shards]") {
    fs::path d = scratch("roundtrip");
    std::vector<uint16_t> toks = {0, 1, 50256, 65535, 12, 7};
    std::string path = (d / "train_000000.bin").string();
    shards::write_shard(path, toks);
    std::string bytes = slurp(path);
    REQUIRE(bytes.size() == 1024 + 2 * toks.size());
    int32_t h[256];
    std::memcpy(h, bytes.data(), 1024);
    CHECK(h[0] == 20240520);
    CHECK(h[1] == 1);
    CHECK(h[2] == 6);
    for (int i = 3; i < 256; ++i) CHECK(h[i] == 0);
    CHECK(static_cast<unsigned char>(bytes[1024 + 4]) == 0x50);  // 50256 = 0xC450, little-endian
    CHECK(static_cast<unsigned char>(bytes[1024 + 5]) == 0xC4);
    CHECK(shards::read_shard(path) == toks);
    shards::MappedShard m(path);
    REQUIRE(m.size() == 6);
    CHECK(std::vector<uint16_t>(m.tokens(), m.tokens() + 6) == toks);
    shards::write_shard((d / "val_000000.bin").string(), {});
    CHECK(shards::read_shard((d / "val_000000.bin").string()).empty());
    for (const auto& e : fs::directory_iterator(d)) CHECK(e.path().extension() == ".bin");  // no temporaries
}

TEST_CASE("shards written by llm.c's data_common.py read back with their tokens", "[shards][llmc]") {
    std::string dir = test::source_path("tests/fixtures/llmc");
    auto train = shards::list_shards(dir, "train"), val = shards::list_shards(dir, "val");
    REQUIRE(train.size() == 2);
    REQUIRE(val.size() == 1);
    CHECK(fs::path(train[0]).filename() == "verdict_train_000001.bin");
    std::vector<int64_t> ids = verdict_ids();
    std::vector<uint16_t> all;
    for (auto& p : train) {
        auto t = shards::read_shard(p);
        all.insert(all.end(), t.begin(), t.end());
    }
    auto v = shards::read_shard(val[0]);
    all.insert(all.end(), v.begin(), v.end());
    REQUIRE(all.size() == 900);
    for (size_t i = 0; i < all.size(); ++i) REQUIRE(all[i] == ids[i]);
    // Through the loader: window 0 of the train split is ids[0..16] shifted by one.
    ShardDataset ds(train, 16);
    CHECK(ds.num_windows() == (400 - 1) / 16 + (300 - 1) / 16);
    std::vector<int64_t> in(16), tg(16);
    ds.window(0, in.data(), tg.data());
    CHECK(in == std::vector<int64_t>(ids.begin(), ids.begin() + 16));
    CHECK(tg == std::vector<int64_t>(ids.begin() + 1, ids.begin() + 17));
    ds.window((400 - 1) / 16, in.data(), tg.data());  // the first window of the second shard
    CHECK(in == std::vector<int64_t>(ids.begin() + 400, ids.begin() + 416));
}

TEST_CASE("bad shards are refused with the file's name and the reason", "[shards][errors]") {
    fs::path d = scratch("bad");
    std::string good = shards::encode_shard(iota16(10));
    auto with_int = [&](int index, int32_t value) {
        std::string b = good;
        std::memcpy(b.data() + 4 * index, &value, 4);
        return b;
    };
    struct Case {
        std::string name, bytes, reason;
    };
    std::vector<Case> cases = {
        {"magic.bin", with_int(0, 20240521), "magic number 20240521"},
        {"version.bin", with_int(1, 2), "version 2 is not supported"},
        {"negative.bin", with_int(2, -5), "token count -5 is negative"},
        {"count_high.bin", with_int(2, 11), "truncated"},
        {"count_low.bin", with_int(2, 9), "the token count is wrong"},
        {"truncated.bin", good.substr(0, good.size() - 3), "truncated"},
        {"short.bin", good.substr(0, 100), "shorter than the 1024-byte header"},
        {"empty.bin", "", "shorter than the 1024-byte header"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        fs::path p = d / c.name;
        spit(p, c.bytes);
        REQUIRE_THROWS_WITH(shards::read_shard(p.string()),
                            Catch::Contains(c.name) && Catch::Contains(c.reason));
        REQUIRE_THROWS_WITH(shards::MappedShard(p.string()),
                            Catch::Contains(c.name) && Catch::Contains(c.reason));
    }
    REQUIRE_THROWS_WITH(shards::MappedShard((d / "absent.bin").string()),
                        Catch::Contains("absent.bin") && Catch::Contains("cannot open"));
    // A shard shorter than one window of context_length + 1 tokens.
    shards::write_shard((d / "train_000000.bin").string(), iota16(64));
    REQUIRE_THROWS_WITH(ShardDataset({(d / "train_000000.bin").string()}, 64),
                        Catch::Contains("train_000000.bin") && Catch::Contains("holds 64 tokens") &&
                            Catch::Contains("--context-length 64"));
    CHECK(ShardDataset({(d / "train_000000.bin").string()}, 63).num_windows() == 1);
}

TEST_CASE("the window permutation is a seeded bijection, new every epoch", "[shards][loader]") {
    for (int64_t n : {1, 2, 3, 5, 16, 17, 1000, 4097}) {
        INFO("n " << n);
        std::set<int64_t> seen;
        WindowPermutation p(n, 42, 0);
        for (int64_t i = 0; i < n; ++i) {
            int64_t v = p(i);
            REQUIRE(v >= 0);
            REQUIRE(v < n);
            seen.insert(v);
        }
        CHECK(static_cast<int64_t>(seen.size()) == n);
    }
    auto order = [](uint64_t seed, int64_t epoch) {
        WindowPermutation p(1000, seed, epoch);
        std::vector<int64_t> v;
        for (int i = 0; i < 1000; ++i) v.push_back(p(i));
        return v;
    };
    CHECK(order(42, 0) == order(42, 0));
    CHECK(order(42, 0) != order(42, 1));
    CHECK(order(42, 0) != order(43, 0));
}

TEST_CASE("loader: sequential and shuffled batches, rank slices, a fixed eval subset", "[shards][loader]") {
    fs::path d = scratch("loader");
    shards::write_shard((d / "train_000000.bin").string(), iota16(1001));      // 100 windows of T = 10
    shards::write_shard((d / "train_000001.bin").string(), iota16(55, 2000));  // 5 windows
    ShardDataset ds(shards::list_shards(d.string(), "train"), 10);
    REQUIRE(ds.num_windows() == 105);
    ShardLoader seq(ds, 4, false, 1);
    CHECK(seq.batches_per_epoch() == 26);
    Batch b = seq.batch(0, 25);  // windows 100..103: all in the second shard
    CHECK(b.input.data[0] == 2000);
    CHECK(b.target.data[0] == 2001);
    CHECK(b.input.data[10] == 2010);
    // Shuffled: every window exactly once per epoch across the batches.
    ShardLoader shuf(ds, 5, true, 7);
    std::multiset<int64_t> firsts;
    for (int64_t k = 0; k < shuf.batches_per_epoch(); ++k) {
        Batch s = shuf.batch(3, k);
        for (int r = 0; r < 5; ++r) firsts.insert(s.input.data[r * 10]);
    }
    CHECK(firsts.size() == 105);
    CHECK(std::set<int64_t>(firsts.begin(), firsts.end()).size() == 105);
    CHECK(shuf.batch(3, 0).input.data != shuf.batch(4, 0).input.data);
    // Two ranks: disjoint windows, together the first 2 * B * steps of the order.
    ShardLoader r0(ds, 5, true, 7, 0, 2), r1(ds, 5, true, 7, 1, 2);
    CHECK(r0.batches_per_epoch() == 10);
    std::set<int64_t> w0, w1;
    for (int64_t k = 0; k < 10; ++k)
        for (int r = 0; r < 5; ++r) {
            w0.insert(r0.batch(0, k).input.data[r * 10]);
            w1.insert(r1.batch(0, k).input.data[r * 10]);
        }
    CHECK(w0.size() == 50);
    CHECK(w1.size() == 50);
    for (int64_t x : w0) CHECK(w1.count(x) == 0);
    CHECK(r1.batch(2, 3).input.data == shuf.batch(2, 7).input.data);  // step 3, rank 1 = global batch 7
    // The eval subset: evenly spaced, the same for any seed.
    ShardLoader e1(ds, 4, true, 1), e2(ds, 4, true, 99);
    CHECK(e1.eval_batch(0, 3).input.data == e2.eval_batch(0, 3).input.data);
    CHECK(e1.eval_batch(0, 3).input.data[0] == 0);
    CHECK(e1.eval_batch(1, 3).input.data[0] == 4 * 105 / 12 * 10);  // window 35
    REQUIRE_THROWS_WITH(ShardLoader(ds, 4, true, 1, 2, 2), Catch::Contains("rank 2"));
}

TEST_CASE("prepare: documents, <|endoftext|> before each, shards of the set size, manifest", "[prepare]") {
    fs::path d = scratch("prepare");
    fs::path in = d / "in";
    spit(in / "a.txt", "The first document.\n");
    spit(in / "sub" / "b.txt", "A second one, in a folder.");
    spit(in / "c.txt", "Third: caf\xC3\xA9 and bad bytes \xFF\xFE here.");
    spit(in / "empty.txt", "");
    PrepareOptions o = prep(d / "out", {in.string()});
    o.val_fraction = 0;
    o.shard_tokens = 10;
    std::ostringstream warn;
    PrepareResult r = prepare(o, warn);
    CHECK_THAT(warn.str(), Catch::Contains("empty.txt") && Catch::Contains("skipped"));
    CHECK(r.documents_train == 3);
    CHECK(r.documents_val == 0);
    // Files in name order: a.txt, c.txt, sub/b.txt; invalid UTF-8 as the tokenizer replaces it.
    std::vector<int64_t> want;
    for (const char* f : {"a.txt", "c.txt", "sub/b.txt"}) {
        want.push_back(Tokenizer::kEndOfText);
        auto ids = gpt2().encode(slurp(in / f));
        want.insert(want.end(), ids.begin(), ids.end());
    }
    auto files = shards::list_shards((d / "out").string(), "train");
    REQUIRE(static_cast<int64_t>(files.size()) == (static_cast<int64_t>(want.size()) + 9) / 10);
    std::vector<int64_t> got;
    for (size_t i = 0; i < files.size(); ++i) {
        auto t = shards::read_shard(files[i]);
        CHECK((i + 1 == files.size() || t.size() == 10));
        got.insert(got.end(), t.begin(), t.end());
    }
    CHECK(got == want);
    json m = json::parse(slurp(d / "out" / "manifest.json"));
    CHECK(m["tokens"]["train"] == want.size());
    CHECK(m["shards"].size() == files.size());
    CHECK(m["shards"][0]["file"] == "train_000000.bin");
    CHECK(m["shards"][0]["crc32"].get<std::string>().size() == 8);
    CHECK(m["sources"].size() == 4);
    CHECK(m["tokenizer"]["name"] == "gpt2");
}

TEST_CASE("prepare twice gives identical bytes, and removes shards it no longer writes", "[prepare]") {
    fs::path d = scratch("rerun");
    std::string text = read_text_file(test::source_path("data/the-verdict.txt"));
    spit(d / "in.txt", text);
    PrepareOptions o = prep(d / "out", {(d / "in.txt").string()});
    o.format = "lines";
    o.shard_tokens = 1000;
    std::ostringstream warn;
    prepare(o, warn);
    std::map<std::string, std::string> first;
    for (const auto& e : fs::directory_iterator(d / "out")) first[e.path().filename()] = slurp(e.path());
    REQUIRE(first.size() > 4);
    fs::copy_file(d / "out" / "train_000000.bin", d / "out" / "train_000099.bin");  // a stale shard
    prepare(o, warn);
    std::map<std::string, std::string> second;
    for (const auto& e : fs::directory_iterator(d / "out")) second[e.path().filename()] = slurp(e.path());
    CHECK(second == first);
}

TEST_CASE("the val split rule: seeded hash of the document's bytes", "[prepare]") {
    fs::path d = scratch("split");
    std::vector<std::string> lines;
    std::string text;
    for (int i = 0; i < 400; ++i) {
        lines.push_back("Document number " + std::to_string(i) + " says hello.");
        text += lines.back() + "\n";
    }
    spit(d / "docs.txt", text);
    int in_val = 0;
    for (auto& l : lines) in_val += goes_to_val(l, 1337, 0.25);
    CHECK(in_val > 60);  // ~100 of 400 expected
    CHECK(in_val < 140);
    int other_seed = 0;
    for (auto& l : lines) other_seed += goes_to_val(l, 1337, 0.25) != goes_to_val(l, 1, 0.25);
    CHECK(other_seed > 0);
    for (auto& l : lines) CHECK(!goes_to_val(l, 1337, 0.0));
    for (auto& l : lines) CHECK(goes_to_val(l, 1337, 1.0));
    PrepareOptions o = prep(d / "out", {(d / "docs.txt").string()});
    o.format = "lines";
    o.val_fraction = 0.25;
    std::ostringstream warn;
    PrepareResult r = prepare(o, warn);
    CHECK(r.documents_val == in_val);
    // The val shard is exactly the val documents in input order.
    std::vector<int64_t> want;
    for (auto& l : lines)
        if (goes_to_val(l, 1337, 0.25)) {
            want.push_back(Tokenizer::kEndOfText);
            auto ids = gpt2().encode(l);
            want.insert(want.end(), ids.begin(), ids.end());
        }
    auto val = shards::read_shard((d / "out" / "val_000000.bin").string());
    CHECK(std::vector<int64_t>(val.begin(), val.end()) == want);
}

TEST_CASE("prepare formats: jsonl and the Brown Corpus, and bad inputs named", "[prepare][errors]") {
    fs::path d = scratch("formats");
    spit(d / "a.jsonl", "{\"text\": \"one\", \"id\": 1}\n\n{\"text\": \"two\"}\n");
    PrepareOptions o = prep(d / "out", {(d / "a.jsonl").string()});
    o.format = "jsonl";
    o.val_fraction = 0;
    std::ostringstream warn;
    CHECK(prepare(o, warn).documents_train == 2);
    spit(d / "bad.jsonl", "{\"text\": \"one\"}\n{\"body\": \"two\"}\n");
    o.inputs = {(d / "bad.jsonl").string()};
    REQUIRE_THROWS_WITH(prepare(o, warn), Catch::Contains("bad.jsonl:2") && Catch::Contains("'text'"));
    spit(d / "worse.jsonl", "{\"text\": \"one\"}\nnot json\n");
    o.inputs = {(d / "worse.jsonl").string()};
    REQUIRE_THROWS_WITH(prepare(o, warn),
                        Catch::Contains("worse.jsonl:2") && Catch::Contains("not a JSON line"));
    o.inputs = {(d / "nowhere.txt").string()};
    REQUIRE_THROWS_WITH(prepare(o, warn), Catch::Contains("nowhere.txt") && Catch::Contains("no such file"));
    o.inputs = {(d / "a.jsonl").string()};
    o.format = "xml";
    REQUIRE_THROWS_WITH(prepare(o, warn), Catch::Contains("--format 'xml'"));
    o.format = "file";
    o.shard_tokens = 0;
    REQUIRE_THROWS_WITH(prepare(o, warn), Catch::Contains("--shard-tokens 0"));
    // Brown: tags stripped, quotes and spacing restored.
    std::string tagged = "\n\n\tThe/at Fulton/np-tl jury/nn said/vbd ``/`` no/at evidence/nn ''/'' was/bedz "
                         "found/vbn ./.\n\n\n"
                         "\tIt/pps asked/vbd (/( again/rb )/) ,/, then/rb left/vbd ;/. why/wrb ?/.\n";
    CHECK(brown_to_text(tagged) ==
          "The Fulton jury said \"no evidence\" was found. It asked (again), then left; why?");
}

TEST_CASE("train --data DIR: resume mid-shard continues bit for bit, across shards and epochs",
          "[prepare][train]") {
    fs::path d = scratch("resume");
    PrepareOptions p = prep(d / "shards", {test::source_path("data/the-verdict.txt")});
    p.format = "lines";
    p.shard_tokens = 1500;  // several train shards
    std::ostringstream warn;
    prepare(p, warn);
    auto run = [&](int64_t steps, const std::string& save, const std::string& resume) {
        TrainOptions o = test::tiny_run();  // dropout stays on (0.1): the generator must resume too
        o.data_path = (d / "shards").string();
        o.batch_size = 4;
        o.epochs = 2;
        o.max_steps = steps;
        o.eval_freq = 7;
        o.eval_iter = 2;
        o.sample_tokens = 2;
        o.quiet = true;
        o.save_path = save;
        o.resume_path = resume;
        return train_model(o);
    };
    auto full = run(-1, (d / "a.safetensors").string(), "");
    REQUIRE(full.steps > 40);
    REQUIRE(full.samples.size() == 2);
    run(full.steps / 4 + 3, (d / "b.safetensors").string(), "");  // inside epoch 1, mid-shard
    auto rest = run(-1, (d / "c.safetensors").string(), (d / "b.safetensors").string());
    auto a = models::read_safetensors((d / "a.safetensors").string()),
         c = models::read_safetensors((d / "c.safetensors").string());
    REQUIRE(a.f32.size() == c.f32.size());
    for (size_t i = 0; i < a.f32.size(); ++i)
        CHECK(a.f32[i].second.to_vector() == c.f32[i].second.to_vector());
    // The position and generator state agree exactly (the clock may not).
    CHECK(test::resume_position(a) == test::resume_position(c));
    std::vector<double> tail(full.step_losses.end() - static_cast<std::ptrdiff_t>(rest.step_losses.size()),
                             full.step_losses.end());
    CHECK(rest.step_losses == tail);
    // Evaluation reads the fixed subsets: the resumed run's evaluations equal the full run's.
    REQUIRE(!rest.evals.empty());
    const EvalPoint& last = rest.evals.back();
    bool found = false;
    for (const EvalPoint& e : full.evals)
        if (e.step == last.step) {
            found = true;
            CHECK(e.train_loss == last.train_loss);
            CHECK(e.val_loss == last.val_loss);
        }
    CHECK(found);
    CHECK(std::isfinite(last.val_loss));
}
