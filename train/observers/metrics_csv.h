// metrics.csv: one row per optimizer step, flushed as written, so an interrupted
// run keeps everything it logged. train_loss and val_loss are filled on the rows
// where evaluation ran. The file is created with the first row, so a run that
// fails before its first step leaves no header-only metrics.csv behind. Every
// write is checked (train/io/checked_file.h): a failed one stops the run.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "train/io/checked_file.h"

namespace tg::train {

struct StepRow {
    int64_t epoch, step, tokens_seen;
    double batch_loss, lr, grad_norm, elapsed_s;
    std::optional<double> train_loss, val_loss;
};

class MetricsWriter {
public:
    // append: keep an existing file's rows (a resumed run).
    MetricsWriter(const std::string& path, bool append);
    ~MetricsWriter();
    MetricsWriter(const MetricsWriter&) = delete;
    MetricsWriter& operator=(const MetricsWriter&) = delete;
    void write(const StepRow& r);

private:
    std::string path_;
    bool append_;
    std::unique_ptr<CheckedFile> f_;
};

}  // namespace tg::train
