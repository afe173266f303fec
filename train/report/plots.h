// PNG plots of a run directory, drawn by gnuplot (Debian's gnuplot-nox, pngcairo).
// Each plot writes its data (.dat) and script (.gp) beside the PNG under
// <run>/plots/, so a user can re-plot or read the numbers.
#pragma once

#include <string>
#include <vector>

namespace tg::train {

// loss.png: train and val loss of every variant against tokens seen and epochs
// (the book's plot_losses).
void plot_losses(const std::string& run_dir, const std::vector<std::string>& variants);

// dynamics_terms.png, dynamics_cosines.png, dynamics_rank.png, dynamics_spectra.png:
// per layer, head-averaged, both variants side by side. Skips variants without a
// dynamics.csv.
void plot_dynamics(const std::string& run_dir, const std::vector<std::string>& variants);

// Run gnuplot on a script; throws with the reason when gnuplot is missing or fails.
void run_gnuplot(const std::string& script_path);

}  // namespace tg::train
