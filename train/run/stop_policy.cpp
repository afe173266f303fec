#include "train/run/stop_policy.h"

#include <signal.h>

#include <cmath>

#include "core/tensor.h"
#include "train/dist/mpi.h"

namespace tg::train {
namespace {

volatile sig_atomic_t g_stop_signal = 0;
int g_agreed_signal = 0;        // the signal all ranks agreed on (should_stop)
std::function<int()> g_source;  // set_stop_source

extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

}  // namespace

void install_stop_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_RESTART;  // a second signal takes the default action
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

// Under mpirun a signal may reach one rank, or reach the ranks at different
// steps: the flag is agreed (the largest signal number any rank saw), so all
// ranks stop after the same step and none waits in a collective for the others.
bool should_stop() {
    if (g_stop_signal == 0 && g_source)
        if (int s = g_source(); s != 0) g_stop_signal = s;
    if (dist::world() > 1) {
        int agreed = static_cast<int>(dist::allreduce_max(static_cast<double>(g_stop_signal)));
        if (agreed != 0) g_agreed_signal = agreed;
        return agreed != 0;
    }
    return g_stop_signal != 0;
}
int stop_signal() { return g_agreed_signal != 0 ? g_agreed_signal : static_cast<int>(g_stop_signal); }

void set_stop_source(std::function<int()> source) { g_source = std::move(source); }

void reset_stop() {
    g_stop_signal = 0;
    g_agreed_signal = 0;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

OnNan parse_on_nan(const std::string& s) {
    if (s == "stop") return OnNan::stop;
    if (s == "skip") return OnNan::skip;
    throw Error("tapegrad: --on-nan must be 'stop' or 'skip', not '" + s + "'");
}

StepVerdict judge_step(double loss, double grad_norm, OnNan policy) {
    if (std::isfinite(loss) && std::isfinite(grad_norm)) return StepVerdict::ok;
    return policy == OnNan::skip ? StepVerdict::skip : StepVerdict::stop;
}

}  // namespace tg::train
