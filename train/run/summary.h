// summary.json of a finished run: what report.md and the plots need besides the CSVs.
#pragma once

#include <string>

#include "train/loop/trainer.h"

namespace tg::train {

void write_summary(const std::string& dir, const TrainOptions& opt, const TrainResult& res);

}  // namespace tg::train
