// Running the tapegrad executable from a test: the command line through the
// shell, stdin from a string, stdout and stderr merged, the exit code (128 +
// signal when a signal ended it). The including test target defines
// TAPEGRAD_BIN (tests/CMakeLists.txt) as the executable's path.
#pragma once

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace tg::test {

struct CliResult {
    int code;          // exit code, or 128 + signal
    std::string text;  // stdout and stderr
};

inline int exit_code(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

// cwd: the folder to run in (default: the test's, the source tree under ctest).
inline CliResult run(const std::string& args, const std::string& stdin_text = "",
                     const std::string& cwd = "") {
    static std::atomic<int> counter{0};
    std::filesystem::path in =
        std::filesystem::temp_directory_path() /
        ("tapegrad_stdin_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::ofstream(in, std::ios::binary) << stdin_text;
    std::string cmd = (cwd.empty() ? "" : "cd '" + cwd + "' && ") + std::string(TAPEGRAD_BIN) + " " + args +
                      " < '" + in.string() + "' 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p);
    std::string text;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) text.append(buf.data(), n);
    int status = pclose(p);
    std::filesystem::remove(in);
    return {exit_code(status), text};
}

}  // namespace tg::test
