#include "train/run/paths.h"

#include <cstdlib>
#include <filesystem>

#include "core/tensor.h"

namespace fs = std::filesystem;

namespace tg::train {
namespace {

// <folder of /proc/self/exe>/../share/tapegrad, or empty when /proc is unavailable.
fs::path installed_dir() {
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
    return (exe.parent_path().parent_path() / "share" / "tapegrad").lexically_normal();
}

}  // namespace

std::string data_dir() {
    if (const char* env = std::getenv("TAPEGRAD_DATA"); env && *env) {
        if (!fs::is_directory(env))
            throw Error(std::string("tapegrad: TAPEGRAD_DATA is '") + env + "', which is not a folder");
        return env;
    }
    fs::path d = installed_dir();
    if (!d.empty() && fs::is_directory(d)) return d.string();
    throw Error(
        "tapegrad: cannot find the data folder (GPT-2 vocab, the-verdict.txt): TAPEGRAD_DATA is not set "
        "and '" +
        (d.empty() ? std::string("<exe>/../share/tapegrad") : d.string()) +
        "' does not exist. Set TAPEGRAD_DATA to a folder holding encoder.json, vocab.bpe and "
        "the-verdict.txt (the repository's data/), or install tapegrad (cmake --install).");
}

std::string data_file(const std::string& name, const std::string& flag) {
    fs::path p = fs::path(data_dir()) / name;
    if (!fs::exists(p))
        throw Error("tapegrad: the data folder has no " + name + " ('" + p.string() + "'); pass " + flag +
                    " or set TAPEGRAD_DATA to a folder that has it");
    return p.string();
}

}  // namespace tg::train
