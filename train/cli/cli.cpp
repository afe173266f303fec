#include "train/cli/cli.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <vector>

#include "train/cli/commands.h"

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
    CLI11_PARSE(app, argc, argv);
    try {
        for (auto& [sub, action] : actions)
            if (sub->parsed()) return action();
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << std::endl;
        return 1;
    }
    return 0;
}

}  // namespace tg::cli
