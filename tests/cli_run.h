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

// Any shell command (mpirun ... tapegrad ..., say), stdout and stderr merged.
// timeout_s > 0 bounds it with timeout(1): TERM after timeout_s seconds, KILL 5 s
// later, exit code 124 (or 128 + 9), so a hang fails the test instead of the run.
inline std::string timeout_prefix(int timeout_s) {
    return timeout_s > 0 ? "timeout -k 5 " + std::to_string(timeout_s) + " " : "";
}
inline CliResult run_shell(const std::string& cmd, int timeout_s = 0) {
    FILE* p = popen((timeout_prefix(timeout_s) + cmd + " 2>&1").c_str(), "r");
    REQUIRE(p);
    std::string text;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) text.append(buf.data(), n);
    return {exit_code(pclose(p)), text};
}

// The tapegrad executable with `args`. cwd: the folder to run in (default: the
// test's, the source tree under ctest); timeout_s as run_shell's.
inline CliResult run(const std::string& args, const std::string& stdin_text = "", const std::string& cwd = "",
                     int timeout_s = 0) {
    static std::atomic<int> counter{0};
    std::filesystem::path in =
        std::filesystem::temp_directory_path() /
        ("tapegrad_stdin_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::ofstream(in, std::ios::binary) << stdin_text;
    std::string cmd = (cwd.empty() ? "" : "cd '" + cwd + "' && ") + timeout_prefix(timeout_s) +
                      std::string(TAPEGRAD_BIN) + " " + args + " < '" + in.string() + "'";
    CliResult r = run_shell(cmd);
    std::filesystem::remove(in);
    return r;
}

}  // namespace tg::test
