// tapegrad, the installed library in one include: #include <tapegrad/tapegrad.h>
//
// core (tensors, the tape, ops, random streams, gradcheck), nn (Module, Layer<D>,
// the layers and the attention variants with their registry), optim (AdamW, SGD,
// clipping, schedule), models (the GPT, generation, checkpoints) and train (the
// tokenizer, data, the Trainer with its observers, the gradient dynamics probe,
// and cli_main, the tapegrad command line as a function). Each header also
// works on its own, e.g. <tapegrad/nn/attention.h>; core/tapegrad.h opens with
// the narrative of how the pieces fit. Installed by `cmake --install`, where the
// in-tree includes ("core/tensor.h") read <tapegrad/core/tensor.h>.
#pragma once

#include "core/tapegrad.h"
#include "models/checkpoint.h"
#include "models/generate.h"
#include "models/gpt.h"
#include "nn/attention.h"
#include "nn/layers.h"
#include "nn/module.h"
#include "optim/adamw.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
#include "train/cli/cli.h"
#include "train/data/text_loader.h"
#include "train/study/probe.h"
#include "train/observers/standard.h"
#include "train/tokenizer/tokenizer.h"
#include "train/loop/trainer.h"
#include "version.h"
