// `tapegrad report RUN_DIR`: plots, report.md and report.html of a compare run directory.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <memory>

#include "train/cli/commands.h"
#include "train/report/report_md.h"

namespace tg::cli {

Command report_command() {
    return {"report", "write plots, report.md and report.html for a compare run directory",
            [](CLI::App& sub) -> Action {
                auto dir = std::make_shared<std::string>();
                sub.add_option("RUN_DIR", *dir, "the run directory")->required();
                return [dir] {
                    std::string html = train::write_report(*dir);
                    fmt::print("wrote {}/report.md and plots\n{}\n", *dir, html);
                    return 0;
                };
            }};
}

}  // namespace tg::cli
