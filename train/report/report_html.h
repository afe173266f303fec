// report.html: the interactive report of a run directory, beside report.md.
// One self-contained file that opens from disk, offline: the page
// (train/report/report.html, embedded into the executable at build time by
// cmake/embed_text.cmake), the plotting library d3 inlined, and the runs'
// metrics.csv, dynamics.csv and summary.json embedded as JSON. It shows per
// quantity a layer x head heatmap of every run on one colour scale with a step
// slider; a clicked head's curves over steps and its singular-value spectra,
// runs overlaid; the loss curves with hover values; the settings and the book's
// loss lines.
//
// d3 is Debian's libjs-d3 (version 3), found at run time, never copied into the
// repository nor compiled in. find_d3() looks, in this order:
//   1. the file named by the environment variable TAPEGRAD_D3, if set (and only
//      there: a wrong path is reported, not silently replaced);
//   2. javascript/d3/d3.min.js under each folder of $XDG_DATA_DIRS (the
//      freedesktop search path; default /usr/local/share:/usr/share), where
//      Debian's package puts it.
// Without d3 the PNG report is still written; the note returned says how to
// get the HTML.
#pragma once

#include <string>
#include <vector>

namespace tg::train {

// One run shown in the page: its name and the folder holding metrics.csv,
// summary.json and (when probed) dynamics.csv.
struct HtmlRun {
    std::string name, dir;
};

// The path of d3.min.js, or "" with `why` saying where it looked and how to get it.
std::string find_d3(std::string& why);

// Writes out_dir/report.html atomically. Returns the line to show the user:
// where it was written and its size, or why it was not (d3 not found or not
// usable) and how to get it. Throws on damaged run files, naming the file.
std::string write_report_html(const std::string& out_dir, const std::string& title,
                              const std::vector<HtmlRun>& runs);

// The filled page without touching disk (for tests): d3_source is inlined as is.
std::string render_report_html(const std::string& title, const std::vector<HtmlRun>& runs,
                               const std::string& d3_source);

}  // namespace tg::train
