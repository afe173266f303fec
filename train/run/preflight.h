// Checks made before anything is built or trained, so that a value that makes
// no sense, or an output that cannot be written, is refused in the first second
// and not after 46 minutes of training. Every message names the flag, the value
// and what is expected ("--lr must be a finite number >= 0, not -1").
#pragma once

#include <string>

#include "train/loop/trainer.h"

namespace tg::train {

// Throws on the first option with a value that makes no sense.
void validate_options(const TrainOptions& o);

// Everything a run can check before it builds the model: validate_options,
// --data, --init-from/--resume exist, --save, --out and --dump-tape (and its
// .dot) writable.
void preflight(const TrainOptions& o);

// Warnings that do not stop the run (printed on stderr): a --warmup at least as
// long as the run never reaches the peak --lr.
void warn_schedule(const TrainOptions& o, int64_t total_steps);

// The file `path` (given with `flag`) can be written: its folder exists, it is
// not a folder itself, and a file can be created beside it (tried for real,
// then removed). Throws naming the flag, the path and the reason.
void check_writable_file(const std::string& flag, const std::string& path);

// The folder `path` exists or can be created, and is writable.
void check_writable_dir(const std::string& flag, const std::string& path);

// --data: a readable regular file (a folder or other special file is refused
// saying that a text file is expected).
void check_data_path(const std::string& flag, const std::string& path);

// A string of decimal digits that fits the range [lo, hi]: for flags whose
// value must not wrap or be truncated ("--seed -1", "12.5" read as 12). `what`
// names the source in the message.
int64_t parse_int_strict(const std::string& what, const std::string& s, int64_t lo, int64_t hi);
uint64_t parse_u64_strict(const std::string& what, const std::string& s);

}  // namespace tg::train
