// `tapegrad compare --fork-at STEP`: one trunk, two parametrisations of the same
// function. mha (with out_proj, any qk_dim) trains steps 0 .. STEP-1; its weights
// are then converted in memory to alt1 with out_proj (models/convert.h: same
// logits), and both branches continue from step STEP on the same batches, so any
// difference after the fork is the parametrisation alone.
//
// Choices, and why:
//   AdamW state  both branches start fresh moments (and step count) at the fork.
//                alt1's S has no moments to inherit (they do not transform through
//                S = Wk^T Wq), and a fresh Adam takes larger first steps (bias
//                correction); resetting mha's as well gives both branches the same
//                restart, so the restart is not counted as an alt1 effect. The
//                learning-rate schedule continues by the global step in both.
//   dropout      the fork runs with dropout 0 (a nonzero --drop-rate is refused):
//                alt1 draws its per-head masks in another order than mha's one
//                [B, NH, T, T] draw, so equal masks would need the generator
//                shared differently per variant; with dropout 0 nothing but the
//                batch order draws from it, and both branches resume the trunk's
//                generator state, so they see the same batches.
// Layout (like compare's): OUT/mha (the trunk, then the mha branch: one
// metrics.csv and dynamics.csv from step 0), OUT/alt1 (metrics.csv and
// dynamics.csv start with a copy of the trunk's rows, then the alt1 branch's), OUT/fork-mha.safetensors (the trunk at
// the fork, with its optimizer state) and OUT/fork-alt1.safetensors (its
// conversion, weights and position only).
#pragma once

#include <string>

#include "train/loop/trainer.h"

namespace tg::train {

struct ForkResult {
    TrainResult trunk, mha, alt1;
    TrainOptions mha_options, alt1_options;  // the branches' options (summary.json)
    std::string stopped;                     // "trunk", "mha" or "alt1" when that part ended early
};

// Refuses, naming the flag, a fork that cannot give the same function: not
// mha, no out_proj, dropout, --fork-at < 1. (Past the run's end is refused by
// train_fork once the run's length is known.)
void check_fork(const TrainOptions& base, int64_t fork_at);

// base: the run's options for mha (out_dir ignored); out: the compare folder.
ForkResult train_fork(const TrainOptions& base, const std::string& out, int64_t fork_at);

}  // namespace tg::train
