#include "train/run/summary.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/blas.h"
#include "models/checkpoint.h"
#include "train/io/json_text.h"

namespace tg::train {
using json = nlohmann::json;

json run_configuration(const TrainOptions& o) {
    std::error_code ec;
    auto size = std::filesystem::is_regular_file(o.data_path, ec)
                    ? std::filesystem::file_size(o.data_path, ec)
                    : std::uintmax_t{0};
    return {{"model", json::parse(models::config_to_json(o.config))},
            {"data", o.data_path},
            {"data_bytes", ec ? std::uintmax_t{0} : size},
            {"train_ratio", o.train_ratio},
            {"epochs", o.epochs},
            {"max_steps", o.max_steps},
            {"max_length", o.max_length},
            {"batch_size", o.batch_size},
            {"shuffle", o.shuffle},
            {"optimizer", o.optimizer},
            {"lr", o.lr},
            {"weight_decay", o.weight_decay},
            {"momentum", o.momentum},
            {"warmup", o.warmup},
            {"min_lr", o.min_lr ? json(*o.min_lr) : json(nullptr)},
            {"clip", o.clip},
            {"seed", o.seed},
            {"init_from", o.init_from},
            {"eval_freq", o.eval_freq},
            {"eval_iter", o.eval_iter},
            {"probe_every", o.probe_every},
            {"start_context", o.start_context},
            {"sample_tokens", o.sample_tokens},
            {"on_nan", o.on_nan},
            {"stop_after", o.stop_after},
            {"fresh_optimizer", o.fresh_optimizer},
            {"final_eval", o.final_eval_full ? "full" : "off"}};
}

namespace {

struct Labels {
    const std::string &a, &b;
};

void diff_into(const json& a, const json& b, const std::string& prefix, const Labels& l, std::string& out) {
    auto add = [&](const std::string& key, const std::string& was, const std::string& now) {
        out += (out.empty() ? "" : "; ") + key + " " + was + " (" + l.a + ") vs " + now + " (" + l.b + ")";
    };
    auto text = [](const json& v, const std::string& k) { return json_text(v, k); };
    for (auto it = a.begin(); it != a.end(); ++it) {
        const std::string key = prefix + it.key();
        if (!b.contains(it.key()))
            add(key, text(it.value(), key), "unset");
        else if (it->is_object() && b.at(it.key()).is_object())
            diff_into(*it, b.at(it.key()), key + ".", l, out);
        else if (*it != b.at(it.key()))
            add(key, text(it.value(), key), text(b.at(it.key()), key));
    }
    for (auto it = b.begin(); it != b.end(); ++it)
        if (!a.contains(it.key())) add(prefix + it.key(), "unset", text(it.value(), prefix + it.key()));
}

}  // namespace

std::string configuration_diff(const json& a, const json& b, const std::string& a_label,
                               const std::string& b_label) {
    if (!a.is_object() || !b.is_object())
        return "no configuration recorded for " + (a.is_object() ? b_label : a_label) +
               " (made by an older tapegrad)";
    std::string out;
    diff_into(a, b, "", Labels{a_label, b_label}, out);
    return out;
}

void write_summary(const std::string& dir, const TrainOptions& o, const TrainResult& r) {
    json j;
    j["config"] = json::parse(models::config_to_json(o.config));
    j["configuration"] = run_configuration(o);
    if (!r.run_id.empty()) j["run_id"] = r.run_id;
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
    // The text for reading (bytes that are no UTF-8 as U+FFFD) and the exact
    // tokens beside it: decode(sample_ids[i]) gives sample i's bytes.
    j["samples"] = r.samples;
    j["sample_ids"] = r.sample_ids;
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
    write_json_file(dir + "/summary.json", j);
}

}  // namespace tg::train
