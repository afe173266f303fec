#include "train/study/same_function_fork.h"

#include <fmt/format.h>

#include <filesystem>

#include "models/checkpoint.h"
#include "models/convert.h"
#include "train/observers/standard.h"
#include "train/run/preflight.h"
#include "train/run/run_dir.h"

namespace tg::train {

namespace fs = std::filesystem;

void check_fork(const TrainOptions& base, int64_t fork_at) {
    if (fork_at < 1)
        throw Error(fmt::format("tapegrad: compare --fork-at: must be a step >= 1 (mha trains steps 0 .. "
                                "STEP-1 before the fork), got {}",
                                fork_at));
    if (!models::converts_to_alt1(base.config.attention))
        throw Error("tapegrad: compare --fork-at: the trunk is mha (converted to alt1 at the fork), not '" +
                    base.config.attention + "'");
    try {
        models::alt1_config_of(base.config);
    } catch (const Error& e) {
        throw Error(std::string(e.what()) + " (compare --fork-at)");
    }
    if (base.config.drop_rate != 0)
        throw Error(
            fmt::format("tapegrad: compare --fork-at: runs with dropout 0 (--drop-rate 0, the default "
                        "for the fork), got {}: alt1 draws its per-head dropout masks in another "
                        "order than mha, so the branches would not see the same masks",
                        base.config.drop_rate));
}

namespace {

TrainOptions trunk_options(const TrainOptions& base, const std::string& out, int64_t fork_at) {
    TrainOptions o = base;
    o.out_dir = out + "/mha";
    o.save_path = out + "/fork-mha.safetensors";
    o.stop_after = fork_at;
    return o;
}

// The trunk: mha to the fork; then its alt1 conversion with the trunk's position.
TrainResult train_trunk(Trainer& t, const std::string& out) {
    StandardObservers obs(t);
    TrainResult res = t.run();
    res.probe_seconds = obs.probe_seconds();
    res.wall.probe = obs.probe_seconds();  // as train_model(): the probe is not the step's
    res.wall.steps -= res.wall.probe;
    if (!res.stopped_by.empty()) return res;
    auto alt1 = models::convert_to_alt1(t.model());
    auto meta = t.checkpoint_metadata();
    meta["tapegrad.converted_from"] = models::config_to_json(t.model().config());
    models::save_checkpoint(out + "/fork-alt1.safetensors", *alt1, nullptr, meta);
    return res;
}

}  // namespace

ForkResult train_fork(const TrainOptions& base, const std::string& out, int64_t fork_at) {
    check_fork(base, fork_at);
    // The trunk's trainer first (it writes nothing): it knows the run's length,
    // so a fork past it is refused before any folder exists.
    const TrainOptions trunk = trunk_options(base, out, fork_at);
    TrainOptions early = trunk;  // what can be checked without the folders
    early.out_dir.clear();
    early.save_path.clear();
    preflight(early);
    set_detect_anomaly(trunk.detect_anomaly);
    Trainer t(trunk);
    if (fork_at >= t.total_steps())
        throw Error(fmt::format("tapegrad: compare --fork-at {}: the run has {} steps in all; the fork must "
                                "come before its last step (1 .. {})",
                                fork_at, t.total_steps(), t.total_steps() - 1));
    // The compare folder and both branches' for the whole fork (one lock per
    // folder and process: flock).
    RunDirLock lock_out(out, "--out", base.overwrite, false);
    RunDirLock lock_mha(out + "/mha", "--out", base.overwrite, false);
    RunDirLock lock_alt1(out + "/alt1", "--out", base.overwrite, false);
    preflight(trunk);  // --save beside the trunk: its folder exists now
    ForkResult r;
    r.trunk = train_trunk(t, out);
    if (r.trunk.steps > 0)  // the new fork has started: the overwritten one goes
        for (RunDirLock* l : {&lock_out, &lock_mha, &lock_alt1}) l->keep_new();
    if (!r.trunk.stopped_by.empty()) {
        r.stopped = "trunk";
        return r;
    }
    // The alt1 branch's history before the fork is the trunk's: copied now, before
    // the mha branch appends to the trunk's files. dynamics.csv too (the probe's
    // rows of the trunk, when --probe-every took any): the alt1 branch appends to
    // it on resume, so both branches' files hold the whole run from step 0.
    // run_id too: the alt1 branch resumes the trunk's checkpoint, so it is the trunk's run.
    for (const char* f : {"/metrics.csv", "/dynamics.csv", "/run_id"})
        if (f == std::string("/metrics.csv") || fs::exists(out + "/mha" + f))
            fs::copy_file(out + "/mha" + f, out + "/alt1" + f, fs::copy_options::overwrite_existing);
    for (bool merged : {false, true}) {
        TrainOptions o = base;
        o.init_from.clear();  // the weights come from the fork checkpoint
        o.fresh_optimizer = true;
        o.resume_path = out + (merged ? "/fork-alt1.safetensors" : "/fork-mha.safetensors");
        if (merged) o.config = models::alt1_config_of(base.config);
        o.out_dir = out + (merged ? "/alt1" : "/mha");
        o.save_path = o.out_dir + "/model.safetensors";
        fmt::print("== {} branch from step {} ({}) ==\n", merged ? "alt1" : "mha", fork_at,
                   o.config.describe());
        TrainResult res = train_model(o);
        (merged ? r.alt1 : r.mha) = res;
        (merged ? r.alt1_options : r.mha_options) = o;
        if (!res.stopped_by.empty()) {
            r.stopped = merged ? "alt1" : "mha";
            return r;
        }
    }
    return r;
}

}  // namespace tg::train
