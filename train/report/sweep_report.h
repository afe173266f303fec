// report.md and plots of a sweep (train/study/sweep.h): the learning rate chosen per
// variant on the selection seeds, then on the evaluation seeds mean +- sd and a
// 95% t-interval of the final and best validation loss and the final training
// loss, paired differences between variants on the same seeds, parameters and
// tokens/s, loss curves as a mean with a band, and the gradient dynamics across
// seeds (cos(dM, -G), query/key/cross shares, stable and effective rank, the
// nuclear and Frobenius norms of M and their ratio: the Tarzanagh et al.
// prediction), with plain words on which differences exceed seed noise.
#pragma once

#include <map>
#include <string>

#include "train/study/sweep.h"

namespace tg::train {

// Writes OUT/report.md and OUT/plots/ from the finished runs of the plan, and
// OUT/report.html with the evaluation runs (per seed, the variants side by
// side); returns report.html's note (train/report/report_html.h).
std::string write_sweep_report(const SweepPlan& plan);

// Per probed step, the mean over layers and heads of one run's dynamics.csv:
// step -> quantity ("dm_cos", "share_q", "share_k", "share_x", "stable_rank",
// "effective_rank", "nuclear", "frobenius", "nuc_over_frob").
std::map<int64_t, std::map<std::string, double>> dynamics_by_step(const std::string& csv_path);

}  // namespace tg::train
