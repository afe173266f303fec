#include "train/run/wall_time.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

namespace tg::train {
namespace {

std::vector<std::pair<const char*, double>> parts(const WallTime& w) {
    return {{"startup", w.startup}, {"steps", w.steps},  {"eval", w.eval},
            {"samples", w.samples}, {"probe", w.probe},  {"checkpoints", w.checkpoints},
            {"metrics", w.metrics}, {"report", w.report}};
}

}  // namespace

WallTime& WallTime::operator+=(const WallTime& o) {
    startup += o.startup;
    steps += o.steps;
    eval += o.eval;
    samples += o.samples;
    probe += o.probe;
    checkpoints += o.checkpoints;
    metrics += o.metrics;
    report += o.report;
    total += o.total;
    return *this;
}

nlohmann::json WallTime::to_json() const {
    nlohmann::json j;
    for (auto& [name, s] : parts(*this)) j[name] = s;
    j["total"] = total;
    j["unaccounted"] = total - sum();
    return j;
}

std::string WallTime::format(const std::string& title) const {
    std::string s = fmt::format("{}: {:.2f} s wall\n", title, total);
    double t = total > 0 ? total : 1;
    for (auto& [name, v] : parts(*this))
        s += fmt::format("  {:<12} {:9.2f} s {:5.1f}%\n", name, v, 100 * v / t);
    s +=
        fmt::format("  {:<12} {:9.2f} s {:5.1f}%\n", "unaccounted", total - sum(), 100 * (total - sum()) / t);
    return s;
}

}  // namespace tg::train
