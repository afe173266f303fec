// Nothing a user already has is lost (issues 36 and 40), driving the
// executable: a sweep folder is locked, outputs never eat their inputs,
// --overwrite keeps the old run until the new one has started, shards are
// checked before step 0, and values that make no sense are refused before any
// training. Each case fails on the behaviour the issues describe.
#include <catch2/catch.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli_run.h"
#include "models/checkpoint.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace tg;

namespace {

using Out = tg::test::CliResult;
using tg::test::exit_code;
using tg::test::run;

fs::path tmpdir() {
    fs::path d = fs::temp_directory_path() / ("tapegrad_loss_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
}
std::string tmp(const std::string& name) { return (tmpdir() / name).string(); }

struct Child {
    pid_t pid = -1;
    int wait() {
        int st = 0;
        ::waitpid(pid, &st, 0);
        return exit_code(st);
    }
};

Child spawn(const std::string& args, const std::string& log) {
    Child c;
    c.pid = ::fork();
    REQUIRE(c.pid >= 0);
    if (c.pid == 0) {
        std::string cmd = "exec " + std::string(TAPEGRAD_BIN) + " " + args + " > '" + log + "' 2>&1";
        ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    return c;
}

int64_t count_lines(const std::string& path) {
    std::ifstream f(path);
    std::string line;
    int64_t n = 0;
    while (std::getline(f, line)) ++n;
    return n;
}

bool wait_for_lines(const std::string& path, int64_t lines, double seconds = 120) {
    auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
        if (fs::exists(path) && count_lines(path) >= lines) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

// Lines of `text` that contain `what`.
int64_t count_lines_of(const std::string& text, const std::string& what) {
    std::istringstream in(text);
    std::string line;
    int64_t n = 0;
    while (std::getline(in, line)) n += line.find(what) != std::string::npos;
    return n;
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

const std::string kSmall = "--preset tiny --context-length 16 --emb-dim 16 --n-heads 2 --n-layers 1 --quiet ";
// A freshly initialised small GPT (kSmall's shape) with a NaN embedding.
std::string poisoned_checkpoint(const std::string& name) {
    models::GPTConfig c = models::preset("tiny");
    c.context_length = 16;
    c.emb_dim = 16;
    c.n_heads = 2;
    c.n_layers = 1;
    manual_seed(123);
    models::GPTModel m(c);
    for (auto& [n, t] : m.named_parameters())
        if (n == "tok_emb.weight")
            std::fill(t.data(), t.data() + t.numel(), std::numeric_limits<float>::quiet_NaN());
    std::string path = tmp(name);
    models::save_checkpoint(path, m);
    return path;
}

// A sweep of one lr (with evaluations: the lr is chosen by the final val loss); add --seeds.
const std::string kSweepBase =
    "sweep " + kSmall + "--eval-freq 10 --eval-iter 1 --variants mha,alt1 --lrs 0.001 ";
const std::string kSweep = kSweepBase + "--probe-every 0 ";

}  // namespace

TEST_CASE("36.2: a second sweep on one folder is refused naming the pid, a killed one resumes",
          "[dataloss][lock]") {
    std::string out = tmp("sweep_lock");
    Child first =
        spawn(kSweep + "--seeds 1 --epochs 100000 --max-steps 1000000 --out " + out, tmp("sweep_first.log"));
    std::string metrics = out + "/runs/mha/lr1e-03/seed1/metrics.csv";
    REQUIRE(wait_for_lines(metrics, 3));
    Out second = run(kSweep + "--seeds 1 --max-steps 20 --out " + out, "", "", 120);
    INFO(second.text);
    CHECK(second.code == 1);
    CHECK_THAT(second.text, Catch::Contains("sweep --out '" + out + "' is in use by another run (pid " +
                                            std::to_string(first.pid) + ")"));
    CHECK(count_lines(metrics) >= 3);  // the first sweep's run was not wiped
    // A live process in one run's folder is not wiped by a sweep either.
    ::kill(first.pid, SIGKILL);
    CHECK(first.wait() == 128 + SIGKILL);
    // The kernel dropped the killed sweep's lock: the same folder resumes.
    Out resumed = run(kSweep + "--seeds 1 --max-steps 20 --out " + out, "", "", 300);
    INFO(resumed.text);
    CHECK(resumed.code == 0);
    CHECK_THAT(resumed.text, Catch::Contains("trained 2 run(s) now, 2 finished"));
    CHECK(count_lines(metrics) == 1 + 20);
    fs::remove_all(out);
}

TEST_CASE("36.2: a sweep never wipes a run folder another live process is writing", "[dataloss][lock]") {
    std::string out = tmp("sweep_run_lock");
    std::string dir = out + "/runs/mha/lr1e-03/seed1";
    Child train = spawn("train " + kSmall + "--epochs 100000 --eval-freq 0 --out " + dir, tmp("run.log"));
    REQUIRE(wait_for_lines(dir + "/metrics.csv", 3));
    Out sweep = run(kSweep + "--seeds 1 --max-steps 5 --out " + out, "", "", 120);
    INFO(sweep.text);
    CHECK(sweep.code == 1);
    CHECK_THAT(sweep.text, Catch::Contains("in use by another run (pid " + std::to_string(train.pid) + ")"));
    CHECK(fs::exists(dir + "/metrics.csv"));
    ::kill(train.pid, SIGKILL);
    train.wait();
    fs::remove_all(out);
}

TEST_CASE("40.4: --overwrite keeps the old run until the new one has finished a step",
          "[dataloss][overwrite]") {
    std::string out = tmp("overwrite");
    Out first = run("train " + kSmall + "--max-steps 3 --eval-freq 0 --seed 1 --out " + out);
    REQUIRE(first.code == 0);
    std::string metrics = slurp(out + "/metrics.csv"), summary = slurp(out + "/summary.json");
    // A checkpoint whose embedding is NaN: the new run passes its preflight and
    // diverges in step 1, before any step has finished.
    std::string bad = poisoned_checkpoint("poison.safetensors");
    Out over = run("train " + kSmall + "--max-steps 3 --eval-freq 0 --seed 2 --overwrite --init-from " + bad +
                   " --allow-nonfinite --out " + out);
    INFO(over.text);
    CHECK(over.code == 3);
    CHECK(slurp(out + "/metrics.csv") == metrics);
    CHECK(slurp(out + "/summary.json") == summary);
    CHECK_FALSE(fs::exists(out + "/.overwritten"));
    // A new run that starts replaces it.
    Out good = run("train " + kSmall + "--max-steps 2 --eval-freq 0 --seed 2 --overwrite --out " + out);
    CHECK(good.code == 0);
    CHECK(count_lines(out + "/metrics.csv") == 1 + 2);
    CHECK_FALSE(fs::exists(out + "/.overwritten"));
    fs::remove_all(out);
}

namespace {

// A folder of text inputs: the-verdict.txt as one document per line.
std::string verdict_inputs(const std::string& name) {
    std::string d = tmp(name);
    fs::create_directories(d);
    fs::copy_file(test::source_path("data/the-verdict.txt"), d + "/verdict.txt",
                  fs::copy_options::overwrite_existing);
    return d;
}

// Every file of a folder (names and bytes), the lock file aside.
std::map<std::string, std::string> listing(const std::string& dir) {
    std::map<std::string, std::string> m;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename() != ".tapegrad.lock")
            m[e.path().filename().string()] = slurp(e.path().string());
    return m;
}

// A process holding `lock` as tapegrad's locks do (flock), with its pid in it.
Child hold_lock(const std::string& lock) {
    Child c;
    c.pid = ::fork();
    REQUIRE(c.pid >= 0);
    if (c.pid == 0) {
        std::string cmd = "echo $$ > '" + lock + "' && exec flock -n -o '" + lock + "' sleep 60";
        ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return c;
}

}  // namespace

TEST_CASE("40.2: prepare never reads its own output, and a failed prepare keeps the old set",
          "[dataloss][prepare]") {
    std::string in = verdict_inputs("prep_in");
    const std::string lines = "prepare --format lines --quiet --shard-tokens 1000 ";
    // --out inside --input: skipped, so reruns give the same tokens.
    std::string out = in + "/shards";
    Out a = run(lines + "--input " + in + " --out " + out);
    INFO(a.text);
    REQUIRE(a.code == 0);
    auto first = listing(out);
    Out b = run(lines + "--input " + in + " --out " + out);
    CHECK(b.code == 0);
    CHECK(listing(out) == first);
    // --out holding the inputs: refused, nothing written.
    Out same = run(lines + "--input " + in + " --out " + in);
    CHECK(same.code == 1);
    CHECK_THAT(same.text, Catch::Contains("is inside --out") && Catch::Contains("its own output"));
    CHECK_FALSE(fs::exists(in + "/manifest.json"));
    // A prepare that fails (every document to val) leaves the old set, and no val shard.
    Out fail = run(lines + "--val-fraction 1 --input " + in + "/verdict.txt --out " + out);
    CHECK(fail.code == 1);
    CHECK_THAT(fail.text, Catch::Contains("no training documents"));
    CHECK(listing(out) == first);
    CHECK_FALSE(fs::exists(out + "/.prepare.tmp"));
    // A file name that is not UTF-8 is shown as U+FFFD in the manifest.
    std::string odd = tmp("prep_odd");
    fs::create_directories(odd);
    fs::copy_file(in + "/verdict.txt", odd + "/caf\xff.txt");
    Out n = run(lines + "--input " + odd + " --out " + tmp("prep_odd_out"));
    INFO(n.text);
    CHECK(n.code == 0);
    auto m = nlohmann::json::parse(slurp(tmp("prep_odd_out") + "/manifest.json"));
    CHECK(m["sources"][0]["path"].get<std::string>().find("caf\xEF\xBF\xBD.txt") != std::string::npos);
    // Two prepares into one folder: the second is refused naming the first's pid.
    Child holder = hold_lock(out + "/.tapegrad.lock");
    Out locked = run(lines + "--input " + in + "/verdict.txt --out " + out);
    CHECK(locked.code == 1);
    CHECK_THAT(locked.text, Catch::Contains("prepare --out '" + out + "' is in use by another run (pid " +
                                            std::to_string(holder.pid) + ")"));
    ::kill(holder.pid, SIGKILL);
    holder.wait();
    fs::remove_all(in);
    fs::remove_all(odd);
    fs::remove_all(tmp("prep_odd_out"));
}

namespace {

// A freshly initialised small GPT (mha with out_proj) as a checkpoint.
std::string small_checkpoint(const std::string& name) {
    models::GPTConfig c = models::preset("tiny");
    c.context_length = 16;
    c.emb_dim = 16;
    c.n_heads = 2;
    c.n_layers = 1;
    manual_seed(7);
    models::GPTModel m(c);
    std::string path = tmp(name);
    models::save_checkpoint(path, m);
    return path;
}

}  // namespace

TEST_CASE("40.3: convert refuses to write its input, by any name", "[dataloss][convert]") {
    std::string ck = small_checkpoint("conv.safetensors");
    std::string before = slurp(ck);
    std::string sym = tmp("conv_link.safetensors"), hard = tmp("conv_hard.safetensors");
    fs::create_symlink(ck, sym);
    fs::create_hard_link(ck, hard);
    for (const std::string& out : {ck, sym, hard}) {
        Out r = run("convert " + ck + " " + out + " --to alt1");
        INFO(r.text);
        CHECK(r.code == 1);
        CHECK_THAT(r.text, Catch::Contains("is the same file as IN"));
    }
    CHECK(slurp(ck) == before);
    // Another file is written (atomically, through a temporary beside it).
    Out ok = run("convert " + ck + " " + tmp("conv_alt1.safetensors") + " --to alt1");
    CHECK(ok.code == 0);
    CHECK(fs::exists(tmp("conv_alt1.safetensors")));
    // train refuses --init-from X --save X too.
    Out t = run("train " + kSmall + "--max-steps 1 --init-from " + ck + " --save " + hard);
    CHECK(t.code == 1);
    CHECK_THAT(t.text, Catch::Contains("--save '" + hard + "' is the same file as --init-from"));
    CHECK(slurp(ck) == before);
}

namespace {

void write_raw_shard(const std::string& path, const std::vector<uint16_t>& ids) {
    std::vector<int32_t> header(256, 0);
    header[0] = 20240520;
    header[1] = 1;
    header[2] = static_cast<int32_t>(ids.size());
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(header.data()), 1024);
    f.write(reinterpret_cast<const char*>(ids.data()), static_cast<std::streamsize>(ids.size() * 2));
}

}  // namespace

TEST_CASE("40.8: shards are checked against the manifest and the vocabulary before step 0",
          "[dataloss][shards]") {
    std::string in = verdict_inputs("shard_in"), data = tmp("shard_data");
    REQUIRE(run("prepare --format lines --quiet --shard-tokens 2000 --input " + in + " --out " + data).code ==
            0);
    const std::string train = "train " + kSmall + "--max-steps 2 --eval-freq 0 --data " + data + " ";
    Out good = run(train);
    INFO(good.text);
    CHECK(good.code == 0);
    CHECK_THAT(good.text, !Catch::Contains("manifest"));
    // --vocab-size below the data's largest id: refused naming shard and offset, before any step.
    Out small = run(train + "--vocab-size 100 --out " + tmp("shard_run"));
    INFO(small.text);
    CHECK(small.code == 1);
    CHECK_THAT(small.text, Catch::Contains("shard 'train_000000.bin' holds token id") &&
                               Catch::Contains("at offset") && Catch::Contains("--vocab-size 100"));
    CHECK_FALSE(fs::exists(tmp("shard_run") + "/metrics.csv"));
    // A damaged byte: the checksum says so.
    std::string shard = data + "/train_000000.bin";
    std::string bytes = slurp(shard);
    std::string flipped = bytes;
    flipped[2000] = static_cast<char>(flipped[2000] ^ 1);
    std::ofstream(shard, std::ios::binary) << flipped;
    Out crc = run(train);
    CHECK(crc.code == 1);
    CHECK_THAT(crc.text, Catch::Contains("train_000000.bin' has CRC-32"));
    std::ofstream(shard, std::ios::binary) << bytes;
    // A shard the manifest does not list (an old set's), and one it lists but is gone.
    fs::copy_file(shard, data + "/train_000099.bin");
    Out extra = run(train);
    CHECK(extra.code == 1);
    CHECK_THAT(extra.text, Catch::Contains("'train_000099.bin' is not in manifest.json"));
    fs::remove(data + "/train_000099.bin");
    fs::rename(data + "/train_000001.bin", tmp("moved.bin"));
    Out gone = run(train);
    CHECK(gone.code == 1);
    CHECK_THAT(gone.text, Catch::Contains("lists 'train_000001.bin', which is missing"));
    // Foreign shards without a manifest: allowed, said once; ids still scanned.
    std::string foreign = tmp("foreign");
    fs::create_directories(foreign);
    std::vector<uint16_t> ids(400, 7);
    write_raw_shard(foreign + "/train_000000.bin", ids);
    const std::string ftrain = "train " + kSmall + "--max-steps 2 --eval-freq 0 --data " + foreign;
    Out f1 = run(ftrain);
    INFO(f1.text);
    CHECK(f1.code == 0);
    CHECK(count_lines_of(f1.text, "has no manifest.json") == 1);
    ids[123] = 60000;
    write_raw_shard(foreign + "/train_000000.bin", ids);
    Out f2 = run(ftrain);
    CHECK(f2.code == 1);
    CHECK_THAT(f2.text, Catch::Contains("'train_000000.bin' holds token id 60000 at offset 1270"));
    CHECK_THAT(f2.text, !Catch::Contains("step 1"));
    fs::remove_all(in);
    fs::remove_all(data);
    fs::remove_all(foreign);
}

TEST_CASE("40.10: values that make no sense are refused before any training", "[dataloss][values]") {
    std::string in = verdict_inputs("values_in");
    Out ps = run("prepare --quiet --seed -1 --input " + in + " --out " + tmp("values_prep"));
    CHECK(ps.code == 1);
    CHECK_THAT(ps.text, Catch::Contains("--seed: '-1' is not an integer in [0, 18446744073709551615]"));
    CHECK_FALSE(fs::exists(tmp("values_prep")));
    std::string sw = tmp("values_sweep");
    Out ss = run(kSweep + "--max-steps 2 --seeds 1 -1 --out " + sw);
    CHECK(ss.code == 1);
    CHECK_THAT(ss.text, Catch::Contains("--seeds: '-1' is not an integer"));
    Out nan = run("sweep " + kSmall + "--max-steps 2 --seeds 1 --lrs 0.001,nan --out " + sw);
    CHECK(nan.code == 1);
    CHECK_THAT(nan.text, Catch::Contains("sweep --lrs: nan is not a finite learning rate"));
    Out unk = run(kSweep + "--max-steps 2 --seeds 1 --variants mha,nosuch --out " + sw);
    CHECK(unk.code == 1);
    CHECK_THAT(unk.text, Catch::Contains("unknown attention 'nosuch'"));
    CHECK_FALSE(fs::exists(sw + "/runs"));
    // compare: the comma form as sweep's; twice the same or an unknown variant before any training.
    const std::string cmp =
        "compare " + kSmall + "--max-steps 2 --eval-freq 1 --eval-iter 1 --probe-every 0 ";
    Out comma = run(cmp + "--variants alt1,mha --out " + tmp("values_cmp"));
    INFO(comma.text);
    CHECK(comma.code == 0);
    CHECK(fs::exists(tmp("values_cmp") + "/alt1/summary.json"));
    CHECK(fs::exists(tmp("values_cmp") + "/mha/summary.json"));
    Out twice = run(cmp + "--variants mha mha --out " + tmp("values_cmp2"));
    CHECK(twice.code == 1);
    CHECK_THAT(twice.text, Catch::Contains("'mha' is given twice"));
    Out unknown = run(cmp + "--variants mha nosuch --out " + tmp("values_cmp2"));
    CHECK(unknown.code == 1);
    CHECK_THAT(unknown.text, Catch::Contains("unknown attention 'nosuch'"));
    CHECK_FALSE(fs::exists(tmp("values_cmp2")));
    // --bucket-mb 0: a short message, not the largest double in 309 digits.
    Out bucket = run("train " + kSmall + "--max-steps 1 --bucket-mb 0");
    CHECK(bucket.code == 1);
    CHECK_THAT(bucket.text, Catch::Contains("--bucket-mb must be a finite number > 0, not 0"));
    CHECK(bucket.text.size() < 200);
    // report on a single train folder says what it expects.
    Out rep = run("report " + tmp("values_cmp") + "/mha");
    CHECK(rep.code == 1);
    CHECK_THAT(rep.text, Catch::Contains("is one run's folder") && Catch::Contains("compare folder"));
    // generate --eos-id past the vocabulary.
    std::string ck = small_checkpoint("values_gen.safetensors");
    Out eos = run("generate --checkpoint " + ck + " --eos-id 999999 --max-new-tokens 2");
    CHECK(eos.code == 1);
    CHECK_THAT(eos.text, Catch::Contains("--eos-id must be a token id in [0, 50256]"));
    fs::remove_all(in);
    fs::remove_all(tmp("values_cmp"));
}

TEST_CASE("40.10: a hand-edited checkpoint position is refused naming the field", "[dataloss][values]") {
    std::string ck = tmp("pos.safetensors");
    Out t = run("train " + kSmall + "--max-steps 3 --eval-freq 0 --save " + ck);
    REQUIRE(t.code == 0);
    auto st = models::read_safetensors(ck);
    auto pos = nlohmann::json::parse(st.metadata.at("tapegrad.train"));
    pos["in_epoch"] = true;
    pos["order"] = std::vector<int64_t>{0, 1, 999999};
    st.metadata["tapegrad.train"] = pos.dump();
    std::string edited = tmp("pos_edited.safetensors");
    models::write_safetensors(edited, st.f32, st.metadata, st.i64);
    Out r = run("train " + kSmall + "--max-steps 6 --eval-freq 0 --resume " + edited);
    INFO(r.text);
    CHECK(r.code == 1);
    CHECK_THAT(r.text, Catch::Contains("training position out of range") && Catch::Contains("order"));
    CHECK_THAT(r.text, !Catch::Contains("_M_range_check"));
    pos["order"] = std::vector<int64_t>{};
    pos["next_batch"] = 1 << 30;
    st.metadata["tapegrad.train"] = pos.dump();
    models::write_safetensors(edited, st.f32, st.metadata, st.i64);
    Out nb = run("train " + kSmall + "--max-steps 6 --eval-freq 0 --resume " + edited);
    CHECK(nb.code == 1);
    CHECK_THAT(nb.text, Catch::Contains("next_batch 1073741824 is not in"));
}

TEST_CASE("40.10: two runs never write one --save checkpoint", "[dataloss][lock]") {
    std::string ck = tmp("shared.safetensors");
    Child holder = hold_lock(tmp(".shared.safetensors.lock"));
    Out second = run("train " + kSmall + "--max-steps 1 --eval-freq 0 --save " + ck);
    CHECK(second.code == 1);
    CHECK_THAT(second.text, Catch::Contains("--save '" + ck + "' is in use by another run (pid " +
                                            std::to_string(holder.pid) + ")"));
    CHECK_FALSE(fs::exists(ck));
    ::kill(holder.pid, SIGKILL);
    holder.wait();
    // Free again: the run writes it and leaves no lock file behind.
    Out free = run("train " + kSmall + "--max-steps 1 --eval-freq 0 --save " + ck);
    CHECK(free.code == 0);
    CHECK(fs::exists(ck));
    CHECK_FALSE(fs::exists(tmp(".shared.safetensors.lock")));
}

namespace {

// Cut a CSV file to its header and the first `rows` rows.
void keep_rows(const std::string& path, int64_t rows) {
    std::istringstream in(slurp(path));
    std::string line, out;
    for (int64_t i = 0; i <= rows && std::getline(in, line); ++i) out += line + "\n";
    std::ofstream(path, std::ios::binary) << out;
}

}  // namespace

TEST_CASE("36.4: report and sweep --report-only say what they leave out, and no gnuplot range noise",
          "[dataloss][report]") {
    // One evaluation per run: gnuplot's "empty x range" warning, kept off the terminal.
    std::string c = tmp("report_c");
    Out cmp =
        run("compare " + kSmall + "--max-steps 3 --eval-freq 5 --eval-iter 1 --probe-every 1 --out " + c);
    INFO(cmp.text);
    REQUIRE(cmp.code == 0);
    CHECK_THAT(cmp.text, !Catch::Contains("range"));
    // No evaluation at all: a figure that says so, not a gnuplot failure.
    Out none =
        run("compare " + kSmall + "--max-steps 1 --eval-freq 0 --probe-every 0 --out " + tmp("report_n"));
    INFO(none.text);
    CHECK(none.code == 0);
    CHECK(fs::exists(tmp("report_n") + "/loss.png"));
    fs::create_directories(c + "/extra");
    std::ofstream(c + "/extra/summary.json") << "{}";
    keep_rows(c + "/mha/metrics.csv", 2);
    fs::remove(c + "/alt1/dynamics.csv");
    Out rep = run("report " + c);
    INFO(rep.text);
    CHECK(rep.code == 0);
    CHECK_THAT(rep.text, Catch::Contains("skipped '" + c + "/extra': it has no metrics.csv"));
    CHECK_THAT(rep.text, Catch::Contains("mha/metrics.csv' holds 2 of the run's 3 steps (truncated)"));
    CHECK_THAT(rep.text, Catch::Contains("alt1/dynamics.csv' is missing"));
    // The sweep's report-only: a run without done.json, a cut metrics.csv, a missing dynamics.csv.
    std::string s = tmp("report_s");
    const std::string sweep = kSweepBase + "--seeds 1 --max-steps 3 --probe-every 1 --out " + s;
    Out sw = run(sweep);
    INFO(sw.text);
    REQUIRE(sw.code == 0);
    const std::string runs = s + "/runs/";
    keep_rows(runs + "mha/lr1e-03/seed1/metrics.csv", 1);
    fs::remove(runs + "alt1/lr1e-03/seed1/dynamics.csv");
    fs::create_directories(runs + "mha/lr1e-03/seed9");
    fs::copy_file(runs + "alt1/lr1e-03/seed1/metrics.csv", runs + "mha/lr1e-03/seed9/metrics.csv");
    Out ro = run(sweep + " --report-only");
    INFO(ro.text);
    CHECK(ro.code == 0);
    CHECK_THAT(ro.text, Catch::Contains("skipped '" + runs + "mha/lr1e-03/seed9': no done.json"));
    CHECK_THAT(ro.text, Catch::Contains("seed1/metrics.csv' holds 1 of the run's 3 steps (truncated)"));
    CHECK_THAT(ro.text, Catch::Contains("alt1/lr1e-03/seed1/dynamics.csv' is missing"));
    fs::remove_all(c);
    fs::remove_all(tmp("report_n"));
    fs::remove_all(s);
}
