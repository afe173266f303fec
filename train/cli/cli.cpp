#include "train/cli/cli.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "train/cli/commands.h"
#include "train/dist/mpi.h"

namespace tg::cli {
namespace {

std::vector<Command>& extra_commands() {
    static std::vector<Command> cmds;
    return cmds;
}

// The built-in subcommands, in the order `tapegrad --help` lists them. A new
// subcommand is a new cmd_*.cpp file and one row here.
std::vector<Command> builtin_commands() {
    return {train_command(),   compare_command(), generate_command(), tokenize_command(),
            prepare_command(), report_command(),  sweep_command(),    convert_command()};
}

}  // namespace

void register_command(Command cmd) { extra_commands().push_back(std::move(cmd)); }

int cli_main(int argc, char** argv) {
    CLI::App app{"tapegrad: a tape-based autograd and the book's Chapter 5 GPT, with standard and merged "
                 "(alt1) attention"};
    app.require_subcommand(1);
    std::vector<Command> cmds = builtin_commands();
    for (const Command& c : extra_commands()) cmds.push_back(c);
    std::vector<std::pair<CLI::App*, Action>> actions;
    for (const Command& c : cmds) {
        CLI::App* sub = app.add_subcommand(c.name, c.help);
        actions.emplace_back(sub, c.setup(*sub));
    }
    // Under mpirun every rank parses the same line: all agree, rank 0 alone
    // prints (dist::init silenced the others' stdout and stderr).
    tg::dist::init(&argc, &argv);
    int code = 0;
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        code = app.exit(e);
        tg::dist::finalize();
        return code;
    }
    try {
        for (auto& [sub, action] : actions)
            if (sub->parsed()) {
                // The other commands would run N times over, writing the same files.
                // sweep spreads whole runs over the ranks instead (train/study/sweep.h).
                if (tg::dist::world() > 1 && sub->get_name() != "train" && sub->get_name() != "compare" &&
                    sub->get_name() != "sweep")
                    throw std::runtime_error("tapegrad " + sub->get_name() +
                                             " runs as one process: under mpirun (" +
                                             std::to_string(tg::dist::world()) +
                                             " ranks) only train and compare are data-parallel, and "
                                             "sweep spreads its runs");
                code = action();
                break;
            }
    } catch (const std::exception& e) {
        // One rank's error ends every rank (no rank waits forever in a collective).
        if (tg::dist::world() > 1) tg::dist::abort(std::string("error: ") + e.what(), 1);
        std::cerr << "error: " << e.what() << std::endl;
        code = 1;
    }
    tg::dist::finalize();
    return code;
}

}  // namespace tg::cli
