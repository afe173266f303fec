// The built-in subcommands, one factory per file of train/cli/ (the table that
// lists them is in cli.cpp).
#pragma once

#include "train/cli/cli.h"

namespace tg::cli {

Command train_command();     // cmd_train.cpp
Command compare_command();   // cmd_train.cpp
Command generate_command();  // cmd_generate.cpp
Command tokenize_command();  // cmd_tokenize.cpp
Command prepare_command();   // cmd_prepare.cpp
Command report_command();    // cmd_report.cpp
Command sweep_command();     // cmd_sweep.cpp
Command convert_command();   // cmd_convert.cpp

}  // namespace tg::cli
