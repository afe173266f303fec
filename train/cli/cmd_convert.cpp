// `tapegrad convert IN OUT --to alt1`: an mha checkpoint with out_proj (any
// --qk-dim) becomes an alt1 checkpoint with out_proj computing the same function
// (models/convert.h has the per-head map S_h = Wk_h^T Wq_h, S_h.bias = Wk_h^T bq_h).
// The output holds weights and config only: no AdamW state, no position.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <memory>

#include "models/convert.h"
#include "train/cli/commands.h"
#include "train/io/same_file.h"

namespace tg::cli {

Command convert_command() {
    return {
        "convert", "turn an mha checkpoint into the alt1 checkpoint of the same function",
        [](CLI::App& sub) -> Action {
            struct Flags {
                std::string in, out, to = "alt1";
                bool allow_nonfinite = false;
            };
            auto f = std::make_shared<Flags>();
            sub.add_option("IN", f->in, "a checkpoint tapegrad wrote for attention mha with out_proj")
                ->required()
                ->check(CLI::ExistingFile);
            sub.add_option("OUT", f->out, "where to write the converted checkpoint (atomically)")->required();
            sub.add_option("--to", f->to,
                           "target variant: alt1 (per head S = Wk^T Wq, S.bias = Wk^T bq; values and "
                           "out_proj copied; out_proj on). AdamW state is not converted: the output "
                           "is weights and config, a start for --init-from")
                ->required()
                ->check(CLI::IsMember({std::string(models::kConvertTarget)}));
            sub.add_flag("--allow-nonfinite", f->allow_nonfinite, "convert weights that hold NaN/Inf");
            return [f] {
                train::refuse_same_file("convert", "IN", f->in, "OUT", f->out);
                models::GPTConfig c = models::convert_checkpoint_to_alt1(f->in, f->out, f->allow_nonfinite);
                fmt::print("wrote {} ({}); optimizer state not converted (start from it with --init-from)\n",
                           f->out, c.describe());
                return 0;
            };
        }};
}

}  // namespace tg::cli
