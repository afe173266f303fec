#include "train/observers/metrics_csv.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/tensor.h"

namespace tg::train {

MetricsWriter::MetricsWriter(const std::string& path, bool append) : path_(path), append_(append) {}

MetricsWriter::~MetricsWriter() {
    if (f_) std::fclose(f_);
}

void MetricsWriter::write(const StepRow& r) {
    if (!f_) {
        bool exists = std::filesystem::exists(path_);
        f_ = std::fopen(path_.c_str(), append_ ? "a" : "w");
        if (!f_) throw Error(fmt::format("tapegrad: cannot write '{}': {}", path_, std::strerror(errno)));
        if (!append_ || !exists)
            fmt::print(f_, "epoch,step,tokens_seen,batch_loss,lr,grad_norm,elapsed_s,train_loss,val_loss\n");
    }
    auto opt = [](const std::optional<double>& v) { return v ? fmt::format("{:.6f}", *v) : std::string(); };
    fmt::print(f_, "{},{},{},{:.6f},{:.6g},{:.6f},{:.3f},{},{}\n", r.epoch, r.step, r.tokens_seen,
               r.batch_loss, r.lr, r.grad_norm, r.elapsed_s, opt(r.train_loss), opt(r.val_loss));
    std::fflush(f_);
}

}  // namespace tg::train
