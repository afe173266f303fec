// Aimed breaks in backward, for gdb (docs/debugging.md).
//
// A break has a label pattern (an exact label or a glob: fnmatch(3) with `*`,
// `?` and `[...]`, where `*` also crosses dots) and optionally a training step.
// run_backward asks BreakWatch, entry by entry, whether to call
// tapegrad_backward_break; the step filter compares with backward_step(), which
// the trainer sets to the step numbering of metrics.csv before each backward.
//
// A pattern that matches no entry walked by the first backward after it was set
// is almost always a typo or a label of the other attention variant, so the end
// of that backward prints a warning on stderr with the closest labels the walk
// saw. The public setters live in core/tape.h; this header is the part
// run_backward and the tests use.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace tg {

struct TapeEntry;

namespace detail {

// One backward walk's view of the break setting (constructed at its start).
class BreakWatch {
public:
    BreakWatch();
    // True when tapegrad_backward_break should be called before this entry's
    // backward: its label matches and the step filter (if any) is this step.
    bool hit(const TapeEntry& e);
    // End of a completed walk: the one-time "matched nothing" warning.
    void finish();

private:
    bool on_ = false;        // a pattern is set
    bool checking_ = false;  // first walk since it was set: collect labels
    bool step_ok_ = false;   // no step filter, or this backward is that step
    std::set<std::string> seen_;
};

// Does `label` match `pattern` (glob when it has *, ? or [, else equality)?
bool label_matches(const std::string& pattern, const std::string& label);

// Up to n labels closest to `pattern`, best first: fewest edits to turn the
// pattern into a prefix of the label (so "x.att.W_query" finds
// "x.att.W_query.linear"), then fewest edits to the whole label, then by name.
std::vector<std::string> closest_labels(const std::string& pattern, const std::vector<std::string>& labels,
                                        size_t n);

// A break pattern is set: the tape then keeps every buffer for gdb to read
// (memory saving's early release is off, core/memory.h).
bool break_armed();

// The step of the coming backward, readable from gdb (tg::detail::g_backward_step).
extern int64_t g_backward_step;

}  // namespace detail
}  // namespace tg
