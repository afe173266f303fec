// The tapegrad command line as a library piece.
//
// `tapegrad` is a thin main() around cli_main(): every subcommand lives in its own
// file of this folder (cmd_train.cpp holds train and compare, cmd_generate.cpp,
// cmd_tokenize.cpp, cmd_report.cpp), and is one row of the table in cli.cpp. A
// downstream project registers its own attention variants (nn/attention.h) and
// subcommands, then calls cli_main(argc, argv) from its own main(), so
// `train --attention NAME` and its own commands work there as they do here.
//
// A Command's setup() adds the subcommand's flags to a CLI11 app and returns the
// action to run if the user chose it; the flags are bound to state the action
// owns, so no global variables are involved.
#pragma once

#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace tg::cli {

using Action = std::function<int()>;

struct Command {
    std::string name;
    std::string help;
    std::function<Action(CLI::App& sub)> setup;
};

// Adds a subcommand to every later cli_main() (built-in ones are always there).
void register_command(Command cmd);

// Parses argv, runs the chosen subcommand and returns the process exit code:
// 0 on success, 1 with "error: ..." on stderr when it throws, CLI11's codes for
// bad flags.
int cli_main(int argc, char** argv);

// Data defaults (the GPT-2 vocab, the-verdict.txt) resolve when a command runs,
// through train/run/paths.h: $TAPEGRAD_DATA, else <prefix>/share/tapegrad next to
// the executable. No path of the build machine is compiled in.

}  // namespace tg::cli
