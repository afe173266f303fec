// tapegrad: the command-line front end.
//   tapegrad train     train one GPT (the book's Chapter 5 loop)
//   tapegrad compare   train mha and alt1 on the same seed and batch order, then report
//   tapegrad generate  continue a prompt from a checkpoint
//   tapegrad tokenize  GPT-2 BPE ids of stdin (or --decode ids back to text)
//   tapegrad report    plots and report.md of a compare run directory
// Each subcommand lives in train/cli/; this main only registers the in-tree
// extension example and hands over, as a downstream project's main would.
#include "core/blas.h"
#include "examples/lowrank_attention.h"
#include "train/cli/cli.h"

int main(int argc, char** argv) {
    tg::exec_with_default_wait_policy(argv);     // passive OpenMP waiting unless the user chose (core/blas.h)
    tg::examples::register_lowrank_attention();  // the extension example: --attention lowrank
    return tg::cli::cli_main(argc, argv);
}
