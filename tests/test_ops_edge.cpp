// Issue 36: every public op (core/ops.h) and layer (nn/layers.h) on edge shapes:
// 0-d tensors, a zero-size dim in each position, size-1 broadcasts and
// non-contiguous inputs, forward and backward. tests/fixtures/edge_cases.json
// (tools/make_edge_fixtures.py, PyTorch 1.13) holds each case's inputs and either
// PyTorch's output and gradients, which tapegrad must match (tests/fixture_check.h),
// or PyTorch's refusal, where tapegrad must throw a tg::Error naming the op.
// Each case runs in a child process of its own, so a crash (or a hang past the
// alarm) is that case's failure, named, never the death of this binary; new
// buffers there are NaN-filled, so a gradient left unwritten fails too. The
// parent does no tensor work before forking: the child starts with libgomp's
// thread pool unborn, so its parallel loops cannot inherit a pool that fork broke.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>

#include "edge_ops.h"
#include "fixture_check.h"
#include "test_util.h"

using namespace tg;
using json = nlohmann::json;

namespace {

// The verdict of one case, in the child: "C" computed as PyTorch does, "R" raised
// where PyTorch raises, otherwise "F" and what went wrong.
std::string verdict(const json& c, const test::EdgeOp& op) {
    const bool torch_raises = c.contains("raises");
    try {
        if (!torch_raises) {
            std::string diff = test::check_fixture_case(c, op.fn);
            return diff.empty() ? "C" : "F" + diff;
        }
        Tensor out = test::fixture_call(c, test::fixture_leaves(c), op.fn);
        return "Fcomputed " + shape_str(out.shape()) +
               " where PyTorch raises: " + c["raises"].get<std::string>();
    } catch (const Error& e) {
        if (!torch_raises) return std::string("Fraised where PyTorch computes: ") + e.what();
        std::string want = std::string("tapegrad: ") + op.name + ": ";
        if (std::string(e.what()).find(want) == std::string::npos)
            return "Fthe message does not name the op (\"" + want + "\"): " + e.what();
        return "R";
    } catch (const std::exception& e) {
        return std::string("Fthrew what is not a tg::Error: ") + e.what();
    }
}

// verdict() in a child process; a child that dies reports how.
std::string verdict_in_child(const json& c, const test::EdgeOp& op) {
    int fd[2];
    if (pipe(fd) != 0) return std::string("Fpipe: ") + std::strerror(errno);
    pid_t pid = fork();
    if (pid < 0) return std::string("Ffork: ") + std::strerror(errno);
    if (pid == 0) {
        close(fd[0]);
        alarm(60);                 // a hang ends as SIGALRM, reported below
        set_debug_fill_nan(true);  // a gradient element backward never writes reads NaN
        std::string v = verdict(c, op);
        for (size_t at = 0; at < v.size();) {
            ssize_t n = write(fd[1], v.data() + at, v.size() - at);
            if (n <= 0) break;
            at += static_cast<size_t>(n);
        }
        _exit(0);  // no atexit handlers, no flush of the parent's buffers
    }
    close(fd[1]);
    std::string v;
    char buf[4096];
    for (ssize_t n; (n = read(fd[0], buf, sizeof buf)) > 0;) v.append(buf, static_cast<size_t>(n));
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) return std::string("Fkilled by signal ") + strsignal(WTERMSIG(status));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || v.empty())
        return "Fthe child exited " + std::to_string(WEXITSTATUS(status)) + " without a verdict";
    return v;
}

}  // namespace

TEST_CASE("every op and layer on edge shapes computes as PyTorch or raises as PyTorch",
          "[ops][edge][torch]") {
    std::ifstream f(test::source_path("tests/fixtures/edge_cases.json"));
    REQUIRE(f.good());
    json fx = json::parse(f);
    const auto& ops = test::edge_ops();
    std::map<std::string, int> per_op;
    int computed = 0, raised = 0, failed = 0;
    for (auto& [name, c] : fx["cases"].items()) {
        std::string op = c["op"].get<std::string>();
        if (!ops.count(op)) {
            FAIL_CHECK("edge case '" << name << "' names op '" << op
                                     << "', which tests/edge_ops.h does not have");
            failed++;
            continue;
        }
        per_op[op]++;
        std::string v = verdict_in_child(c, ops.at(op));
        computed += v == "C";
        raised += v == "R";
        if (v == "C" || v == "R") continue;
        failed++;
        std::cout << "edge case '" << name << "' fails: " << v.substr(1) << "\n";
        FAIL_CHECK("edge case '" << name << "': " << v.substr(1));
    }
    for (auto& [op, e] : ops) {
        INFO("op '" << op << "' of tests/edge_ops.h has no case in tools/make_edge_fixtures.py");
        CHECK(per_op.count(op));
    }
    std::cout << "edge sweep: " << fx["cases"].size() << " (op, shape) cases of " << per_op.size()
              << " ops: " << computed << " compute as PyTorch, " << raised << " raise as PyTorch, " << failed
              << " fail\n";
    CHECK(computed + raised == static_cast<int>(fx["cases"].size()));
}
