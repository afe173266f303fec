// summary.json of a finished run: what report.md and the plots need besides the
// CSVs, and the run's full resolved configuration (run_configuration), which
// done.json records too, so that a finished run is known by what made it.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "train/loop/trainer.h"

namespace tg::train {

void write_summary(const std::string& dir, const TrainOptions& opt, const TrainResult& res);

// Every setting of `o` that changes a run's numbers (the model config, the data,
// the optimizer and its schedule, seed, steps, batch, evaluation, sampling),
// and none that only changes where or how fast it runs (out_dir, threads,
// --quiet, memory saving, bucket size).
nlohmann::json run_configuration(const TrainOptions& o);

// The settings that differ between two configurations, "max_steps 20
// (recorded) vs 5 (now)" joined by "; " with the labels given (nested keys as
// "model.emb_dim"); empty when they are equal.
std::string configuration_diff(const nlohmann::json& a, const nlohmann::json& b,
                               const std::string& a_label = "recorded", const std::string& b_label = "now");

}  // namespace tg::train
