// report.md of a compare run directory: parameter counts, speed, losses, samples
// for each variant, and (when dynamics.csv exists) what the gradient dynamics
// show, stated from the measured numbers; plus the PNG plots (train/report/plots.h)
// and the interactive report.html (train/report/report_html.h).
#pragma once

#include <string>
#include <vector>

namespace tg::train {

// Variants: the subfolders of run_dir holding a metrics.csv (mha first).
std::vector<std::string> run_variants(const std::string& run_dir);
// Writes report.md, the PNGs and report.html; returns report.html's note (where
// it was written, or why not and how to get it: the PNGs are written regardless).
std::string write_report(const std::string& run_dir);

}  // namespace tg::train
