// Training helpers shared by the tests: the tiny GPT most training tests run,
// and a checkpoint's saved position without its wall clock.
#pragma once

#include <nlohmann/json.hpp>

#include "models/safetensors.h"
#include "test_util.h"
#include "train/loop/trainer.h"

namespace tg::test {

// A GPT over GPT-2's vocabulary small enough to train in a fraction of a second a
// step (context 16, one layer of 16 with 2 heads; dropout as the tiny preset), on
// the-verdict.txt, quiet.
inline train::TrainOptions tiny_run() {
    train::TrainOptions o;
    o.config = models::preset("tiny");
    o.config.context_length = 16;
    o.config.emb_dim = 16;
    o.config.n_heads = 2;
    o.config.n_layers = 1;
    o.data_path = source_path("data/the-verdict.txt");
    o.vocab_dir = source_path("data");
    o.quiet = true;
    o.eval_freq = 5;
    o.eval_iter = 2;
    o.sample_tokens = 3;
    return o;
}

// The position and generator state a checkpoint holds for --resume, without the
// clock (elapsed and training seconds, carried over by --resume, are wall time).
inline nlohmann::json resume_position(const models::SafeTensors& st) {
    auto j = nlohmann::json::parse(st.metadata.at("tapegrad.train"));
    j.erase("elapsed_s");
    j.erase("train_seconds");
    return j;
}

}  // namespace tg::test
