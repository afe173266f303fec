#include "train/observers/metrics_csv.h"

#include <fmt/format.h>

#include <filesystem>

namespace tg::train {

MetricsWriter::MetricsWriter(const std::string& path, bool append) : path_(path), append_(append) {}

MetricsWriter::~MetricsWriter() = default;

void MetricsWriter::write(const StepRow& r) {
    if (!f_) {
        bool exists = std::filesystem::exists(path_);
        f_ = std::make_unique<CheckedFile>(path_, append_ ? "a" : "w");
        if (!append_ || !exists)
            f_->write("epoch,step,tokens_seen,batch_loss,lr,grad_norm,elapsed_s,train_loss,val_loss\n");
    }
    auto opt = [](const std::optional<double>& v) { return v ? fmt::format("{:.6f}", *v) : std::string(); };
    f_->write(fmt::format("{},{},{},{:.6f},{:.6g},{:.6f},{:.3f},{},{}\n", r.epoch, r.step, r.tokens_seen,
                          r.batch_loss, r.lr, r.grad_norm, r.elapsed_s, opt(r.train_loss), opt(r.val_loss)));
}

}  // namespace tg::train
