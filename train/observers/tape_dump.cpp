#include "train/observers/tape_dump.h"

#include <fmt/format.h>

#include <filesystem>
#include <sstream>

#include "core/tape.h"
#include "models/safetensors.h"

namespace tg::train {

void write_tape_dump(const std::string& path, int64_t step, const std::string& what) {
    std::ostringstream text, dot;
    text << fmt::format(
        "# tapegrad train --dump-tape: step {} of {}, after forward and loss, before backward\n", step, what);
    tape().dump(text);
    tape().to_dot(dot);
    models::write_file_atomic(path, text.str());
    models::write_file_atomic(path + ".dot", dot.str());
}

TapeDump::TapeDump(const Trainer& t) : path_(t.options().dump_tape), what_(t.options().config.describe()) {
    const TrainOptions& o = t.options();
    int64_t first = t.position().global_step + 1, last = t.total_steps() - 1;
    at_ = o.dump_tape_step.value_or(first);
    if (at_ < first || at_ > last)
        throw Error(fmt::format("tapegrad: --dump-tape-step {}: this run makes steps {}..{} (metrics.csv "
                                "numbering{})",
                                at_, first, last, o.resume_path.empty() ? "" : ", after --resume"));
    auto dir = std::filesystem::path(path_).parent_path();
    if (!dir.empty() && !std::filesystem::is_directory(dir))
        throw Error(
            fmt::format("tapegrad: --dump-tape '{}': folder '{}' does not exist", path_, dir.string()));
}

void TapeDump::before_backward() {
    if (step_ == at_) write_tape_dump(path_, step_, what_);
}

}  // namespace tg::train
