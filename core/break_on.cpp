#include "core/break_on.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "core/tape.h"

namespace tg {
namespace detail {

int64_t g_backward_step = -1;

namespace {

struct BreakSetting {
    std::string pattern;
    int64_t step = -1;     // -1: every backward
    bool checked = false;  // the first walk since the pattern was set has ended
};

// TAPEGRAD_BREAK_STEP: a non-negative integer, nothing else.
int64_t parse_step_env(const char* s) {
    std::string v(s);
    bool digits = !v.empty() && v.size() <= 18 &&
                  std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits)
        throw Error(fmt::format("tapegrad: TAPEGRAD_BREAK_STEP='{}' is not a step number (expected a "
                                "non-negative integer, as in metrics.csv's step column)",
                                v));
    return std::stoll(v);
}

// Read once from the environment; set_break_on replaces it.
BreakSetting& setting() {
    static BreakSetting s = [] {
        BreakSetting b;
        const char* label = std::getenv("TAPEGRAD_BREAK_ON");
        const char* step = std::getenv("TAPEGRAD_BREAK_STEP");
        b.pattern = label ? label : "";
        if (step && *step) b.step = parse_step_env(step);
        if (b.step >= 0 && b.pattern.empty())
            std::cerr << fmt::format("tapegrad: warning: TAPEGRAD_BREAK_STEP={} does nothing without "
                                     "TAPEGRAD_BREAK_ON (the label or glob to break at)\n",
                                     b.step);
        return b;
    }();
    return s;
}

bool is_glob(const std::string& p) { return p.find_first_of("*?[") != std::string::npos; }

}  // namespace

bool label_matches(const std::string& pattern, const std::string& label) {
    if (!is_glob(pattern)) return pattern == label;
    return fnmatch(pattern.c_str(), label.c_str(), 0) == 0;  // no FNM_PERIOD: '*' crosses dots
}

// Edit distances of p against every prefix of s: row[j] = edits(p, s[0, j)).
// The last row's minimum is the prefix distance, its last element the full one.
static std::vector<size_t> edit_row(const std::string& p, const std::string& s) {
    std::vector<size_t> prev(s.size() + 1), cur(s.size() + 1);
    for (size_t j = 0; j <= s.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= p.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= s.size(); ++j)
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (p[i - 1] == s[j - 1] ? 0 : 1)});
        std::swap(prev, cur);
    }
    return prev;
}

std::vector<std::string> closest_labels(const std::string& pattern, const std::vector<std::string>& labels,
                                        size_t n) {
    struct Scored {
        size_t prefix, full;
        const std::string* label;
    };
    std::vector<Scored> scored;
    for (const auto& l : labels) {
        std::vector<size_t> row = edit_row(pattern, l);
        scored.push_back({*std::min_element(row.begin(), row.end()), row.back(), &l});
    }
    std::sort(scored.begin(), scored.end(), [](const Scored& a, const Scored& b) {
        if (a.prefix != b.prefix) return a.prefix < b.prefix;
        if (a.full != b.full) return a.full < b.full;
        return *a.label < *b.label;
    });
    std::vector<std::string> out;
    for (size_t i = 0; i < scored.size() && out.size() < n; ++i)
        if (out.empty() || out.back() != *scored[i].label) out.push_back(*scored[i].label);
    return out;
}

bool break_armed() { return !setting().pattern.empty(); }

BreakWatch::BreakWatch() {
    BreakSetting& s = setting();
    on_ = !s.pattern.empty();
    checking_ = on_ && !s.checked;
    step_ok_ = s.step < 0 || s.step == g_backward_step;
}

bool BreakWatch::hit(const TapeEntry& e) {
    if (!on_) return false;
    const std::string& label = e.output.label();
    if (checking_) seen_.insert(label);
    if (!label_matches(setting().pattern, label)) return false;
    if (checking_) checking_ = false;  // it matches: nothing to warn about
    return step_ok_;
}

void BreakWatch::finish() {
    BreakSetting& s = setting();
    if (!on_ || s.checked) return;
    s.checked = true;
    if (s.step >= 0 && g_backward_step < 0)
        std::cerr << fmt::format("tapegrad: warning: break step {} is set, but nothing numbers the backward "
                                 "steps (tapegrad train does; elsewhere call tg::set_backward_step)\n",
                                 s.step);
    if (!checking_) return;  // a label matched
    std::vector<std::string> labels(seen_.begin(), seen_.end());
    std::string near;
    for (const auto& l : closest_labels(s.pattern, labels, 5)) near += "\n    " + l;
    std::cerr << fmt::format("tapegrad: warning: break label '{}' matched none of the {} labels the first "
                             "backward walked; the closest are:{}\n(`tapegrad train --dump-tape FILE` lists "
                             "every entry)\n",
                             s.pattern, labels.size(), near);
}

}  // namespace detail

void set_break_on(const std::string& label, int64_t step) {
    detail::BreakSetting& s = detail::setting();
    s.pattern = label;
    s.step = step;
    s.checked = false;
}

void set_backward_step(int64_t step) { detail::g_backward_step = step; }
int64_t backward_step() { return detail::g_backward_step; }

}  // namespace tg
