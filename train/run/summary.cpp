#include "train/run/summary.h"

#include <nlohmann/json.hpp>

#include "core/blas.h"
#include "models/checkpoint.h"
#include "models/safetensors.h"

namespace tg::train {

void write_summary(const std::string& dir, const TrainOptions& o, const TrainResult& r) {
    nlohmann::json j;
    j["config"] = nlohmann::json::parse(models::config_to_json(o.config));
    j["num_parameters"] = r.num_parameters;
    j["steps"] = r.steps;
    j["tokens_seen"] = r.tokens_seen;
    j["seconds"] = r.seconds;
    j["train_seconds"] = r.train_seconds;
    j["seconds_per_step"] = r.steps ? r.train_seconds / static_cast<double>(r.steps) : 0.0;
    j["tokens_per_second"] = r.train_seconds > 0 ? static_cast<double>(r.tokens_seen) / r.train_seconds : 0.0;
    j["probe_seconds"] = r.probe_seconds;
    j["probe_every"] = o.probe_every;
    if (o.final_eval_full) {
        j["full_val_loss"] = r.full_val_loss;
        j["full_val_tokens"] = r.full_val_tokens;
    }
    j["wall_time_s"] = r.wall.to_json();
    j["threads"] = num_threads();  // the pool the run used (--threads or the default)
    j["omp_wait_policy"] = wait_policy();
    j["samples"] = r.samples;
    j["sample_kv_cache"] = o.sample_kv_cache;
    if (o.sample_kv_cache == "check")
        j["sample_kv_cache_check"] = {{"equal", r.sample_cache_equal}, {"differ", r.sample_cache_differ}};
    j["book_lines"] = r.book_lines;
    j["lr"] = o.lr;
    j["weight_decay"] = o.weight_decay;
    j["seed"] = o.seed;
    j["batch_size"] = o.batch_size;
    j["epochs"] = o.epochs;
    j["skipped_steps"] = r.skipped_steps;                       // --on-nan skip
    if (!r.stopped_by.empty()) j["stopped_by"] = r.stopped_by;  // SIGINT, SIGTERM, nonfinite
    if (!r.diverged.empty()) j["diverged"] = r.diverged;
    if (!r.saved_path.empty()) {
        j["checkpoint"] = r.saved_path;
        j["checkpoint_step"] = r.saved_step;
    }
    if (r.world > 1)  // data parallel: the buckets and how many started during backward
        j["data_parallel"] = {{"world", r.world},
                              {"buckets", r.dp_buckets},
                              {"steps", r.dp_steps},
                              {"launched_in_backward", r.dp_launched_in_backward}};
    if (!r.evals.empty()) {
        j["final_train_loss"] = r.evals.back().train_loss;
        j["final_val_loss"] = r.evals.back().val_loss;
    }
    models::write_file_atomic(dir + "/summary.json", j.dump(2) + "\n");
}

}  // namespace tg::train
