#include "train/run/preflight.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "train/io/same_file.h"

namespace tg::train {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void refuse(const std::string& flag, const std::string& expected, const std::string& value) {
    throw Error(fmt::format("tapegrad: {} must be {}, not {}", flag, expected, value));
}

void at_least(const char* flag, int64_t v, int64_t lo) {
    if (v < lo) refuse(flag, fmt::format("an integer >= {}", lo), std::to_string(v));
}

void finite_at_least(const char* flag, double v, double lo, bool strict) {
    bool ok = std::isfinite(v) && (strict ? v > lo : v >= lo);
    if (!ok)
        refuse(flag, fmt::format("a finite number {} {}", strict ? ">" : ">=", lo), fmt::format("{}", v));
}

}  // namespace

void validate_options(const TrainOptions& o) {
    const auto& c = o.config;
    at_least("--vocab-size", c.vocab_size, 1);
    at_least("--context-length", c.context_length, 1);
    at_least("--emb-dim", c.emb_dim, 1);
    at_least("--n-heads", c.n_heads, 1);
    at_least("--n-layers", c.n_layers, 1);
    if (c.emb_dim % c.n_heads != 0)
        throw Error(
            fmt::format("tapegrad: --emb-dim {} must be divisible by --n-heads {}", c.emb_dim, c.n_heads));
    if (!(c.drop_rate >= 0.0f && c.drop_rate < 1.0f))
        refuse("--drop-rate", "a number in [0, 1)", fmt::format("{}", c.drop_rate));
    at_least("--epochs", o.epochs, 0);
    at_least("--max-steps", o.max_steps, -1);  // -1: no limit
    at_least("--batch-size", o.batch_size, 1);
    finite_at_least("--lr", o.lr, 0, false);  // 0 is a valid no-op step, as in PyTorch
    finite_at_least("--weight-decay", o.weight_decay, 0, false);
    finite_at_least("--momentum", o.momentum, 0, false);
    at_least("--warmup", o.warmup, 0);
    if (o.min_lr) {
        finite_at_least("--min-lr", *o.min_lr, 0, false);
        if (*o.min_lr > o.lr)
            throw Error(fmt::format("tapegrad: --min-lr {} must not exceed --lr {}", *o.min_lr, o.lr));
    }
    finite_at_least("--clip", o.clip, 0, false);
    at_least("--eval-freq", o.eval_freq, 0);
    at_least("--eval-iter", o.eval_iter, 1);
    at_least("--probe-every", o.probe_every, 0);
    at_least("--save-every", o.save_every, 0);
    finite_at_least("--bucket-mb", o.bucket_mb, 0, true);
    if (o.save_every > 0 && o.save_path.empty())
        throw Error("tapegrad: --save-every needs --save FILE (the checkpoint it rewrites)");
}

void preflight(const TrainOptions& o) {
    validate_options(o);
    check_data_path("--data", o.data_path);
    for (auto [flag, path] : {std::pair{"--init-from", &o.init_from}, std::pair{"--resume", &o.resume_path}})
        if (!path->empty() && !fs::is_regular_file(*path))
            throw Error(fmt::format("tapegrad: {} '{}': {}", flag, *path,
                                    fs::is_directory(*path) ? "is a folder; expected a .safetensors file"
                                                            : "no such file"));
    // --resume FILE --save FILE continues one checkpoint; any other input is never overwritten.
    refuse_same_file("train", "--init-from", o.init_from, "--save", o.save_path);
    refuse_same_file("train", "--data", o.data_path, "--save", o.save_path);
    if (!o.save_path.empty()) check_writable_file("--save", o.save_path);
    if (!o.out_dir.empty()) check_writable_dir("--out", o.out_dir);
    if (!o.dump_tape.empty()) {  // written at one step, maybe hours in: tried now
        check_writable_file("--dump-tape", o.dump_tape);
        check_writable_file("--dump-tape", o.dump_tape + ".dot");
    }
}

void warn_schedule(const TrainOptions& o, int64_t total_steps) {
    if (o.warmup > 0 && o.warmup >= total_steps)
        std::cerr << fmt::format(
            "tapegrad: warning: --warmup {} is not shorter than the run's {} steps: the learning rate never "
            "reaches the peak --lr {}\n",
            o.warmup, total_steps, o.lr);
}

void check_writable_file(const std::string& flag, const std::string& path) {
    fs::path p(path);
    fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    if (fs::is_directory(p))
        throw Error(fmt::format("tapegrad: {} '{}' is a folder; expected a file name", flag, path));
    if (!fs::is_directory(dir))
        throw Error(fmt::format("tapegrad: {} '{}': the folder '{}' does not exist (checked before training, "
                                "so no work is lost)",
                                flag, path, dir.string()));
    // Try it: permissions, read-only mounts and ACLs all answer here.
    fs::path probe = dir / fmt::format(".{}.probe.{}", p.filename().string(), ::getpid());
    int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        throw Error(fmt::format("tapegrad: {} '{}': cannot write in '{}': {}", flag, path, dir.string(),
                                std::strerror(errno)));
    ::close(fd);
    ::unlink(probe.c_str());
}

void check_writable_dir(const std::string& flag, const std::string& path) {
    fs::path p(path);
    if (fs::exists(p) && !fs::is_directory(p))
        throw Error(fmt::format("tapegrad: {} '{}' is a file; expected a folder", flag, path));
    fs::path existing = p;  // the nearest folder that exists must be writable
    while (!existing.empty() && !fs::exists(existing)) existing = existing.parent_path();
    if (existing.empty()) existing = ".";
    if (!fs::is_directory(existing))
        throw Error(fmt::format("tapegrad: {} '{}': '{}' is not a folder", flag, path, existing.string()));
    if (::access(existing.c_str(), W_OK | X_OK) != 0)
        throw Error(fmt::format("tapegrad: {} '{}': cannot write in '{}': {}", flag, path, existing.string(),
                                std::strerror(errno)));
}

void check_data_path(const std::string& flag, const std::string& path) {
    // A folder is a corpus of token shards (train/data/shard_loader.h validates them);
    // a folder without any train_*.bin is refused here, before the first step.
    if (fs::is_directory(path)) {
        for (const auto& e : fs::directory_iterator(path)) {
            std::string n = e.path().filename().string();
            if (n.rfind("train_", 0) == 0 && e.path().extension() == ".bin") return;
        }
        throw Error(fmt::format("tapegrad: {} '{}' is a folder that holds no token shards; expected a UTF-8 "
                                "text file or a directory of llm.c-format shards train_NNNNNN.bin / "
                                "val_NNNNNN.bin (tapegrad prepare)",
                                flag, path));
    }
    if (fs::exists(path) && !fs::is_regular_file(path))
        throw Error(
            fmt::format("tapegrad: {} '{}' is not a regular file; expected a UTF-8 text file", flag, path));
}

int64_t parse_int_strict(const std::string& what, const std::string& s, int64_t lo, int64_t hi) {
    size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
    bool digits = s.size() > i && s.find_first_not_of("0123456789", i) == std::string::npos;
    errno = 0;
    long long v = digits ? std::strtoll(s.c_str(), nullptr, 10) : 0;
    if (!digits || errno == ERANGE || v < lo || v > hi)
        throw Error(fmt::format("tapegrad: {}: '{}' is not an integer in [{}, {}]", what, s, lo, hi));
    return v;
}

uint64_t parse_u64_strict(const std::string& what, const std::string& s) {
    bool digits = !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
    errno = 0;
    unsigned long long v = digits ? std::strtoull(s.c_str(), nullptr, 10) : 0;
    if (!digits || errno == ERANGE)
        throw Error(
            fmt::format("tapegrad: {}: '{}' is not an integer in [0, 18446744073709551615]", what, s));
    return v;
}

}  // namespace tg::train
