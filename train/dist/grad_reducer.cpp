#include "train/dist/grad_reducer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "train/run/clock.h"

namespace tg::train {

RowRange rank_rows(int64_t rows, int rank, int world) {
    return {rows * rank / world, rows * (rank + 1) / world};
}

Batch slice_rows(const Batch& b, RowRange r) {
    if (r.begin == 0 && r.end == b.input.shape[0]) return b;
    const int64_t T = b.input.shape[1];
    Batch s;
    s.input.shape = s.target.shape = {r.size(), T};
    s.input.data.assign(b.input.data.begin() + r.begin * T, b.input.data.begin() + r.end * T);
    s.target.data.assign(b.target.data.begin() + r.begin * T, b.target.data.begin() + r.end * T);
    return s;
}

double global_batch_loss(double local_mean, int64_t local_rows, int64_t batch_rows) {
    double share = local_rows > 0 ? local_mean * static_cast<double>(local_rows) : 0.0;
    dist::allreduce_sum(&share, 1);
    return share / static_cast<double>(batch_rows);
}

GradReducer::GradReducer(const std::vector<Tensor>& params, double bucket_mb) : params_(params) {
    if (!(bucket_mb > 0)) throw Error(fmt::format("tapegrad: --bucket-mb must be > 0, not {}", bucket_mb));
    const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb * 1e6 / sizeof(float)));
    bucket_of_.resize(params_.size());
    offset_.resize(params_.size());
    // Reverse registration order: the output head first, the token embedding last,
    // as backward finishes them.
    for (size_t k = params_.size(); k-- > 0;) {
        int64_t n = params_[k].numel();
        if (buckets_.empty() || (!buckets_.back().params.empty() &&
                                 static_cast<int64_t>(buckets_.back().buffer.size()) + n > cap))
            buckets_.emplace_back();
        Bucket& b = buckets_.back();
        bucket_of_[k] = buckets_.size() - 1;
        offset_[k] = static_cast<int64_t>(b.buffer.size());
        b.params.push_back(k);
        b.buffer.resize(b.buffer.size() + static_cast<size_t>(n));
    }
    for (Bucket& b : buckets_) {  // the has-gradient flags after the gradients
        b.flags = static_cast<int64_t>(b.buffer.size());
        b.buffer.resize(b.buffer.size() + b.params.size());
    }
    for (size_t k = 0; k < params_.size(); ++k) index_.emplace_back(params_[k].impl(), k);
    std::sort(index_.begin(), index_.end());
}

void GradReducer::begin() {
    for (Bucket& b : buckets_) {
        b.waiting = static_cast<int64_t>(b.params.size());
        b.launched = false;
    }
    next_launch_ = 0;
    stats_ = ReduceStats{};
    stats_.buckets = num_buckets();
    in_backward_ = true;
    set_backward_listener(this);
}

// Pack the bucket's gradients (zeros for a parameter backward gave none) and
// their has-gradient flags, and start their sum over the ranks.
void GradReducer::launch(Bucket& b) {
    double t0 = now_s();
    for (size_t j = 0; j < b.params.size(); ++j) {
        const size_t k = b.params[j];
        float* dst = b.buffer.data() + offset_[k];
        Tensor g = params_[k].grad();
        if (g.defined())
            std::memcpy(dst, g.data(), sizeof(float) * static_cast<size_t>(g.numel()));
        else
            std::fill(dst, dst + params_[k].numel(), 0.0f);
        b.buffer[static_cast<size_t>(b.flags) + j] = g.defined() ? 1.0f : 0.0f;
    }
    stats_.copy_s += now_s() - t0;
    b.req = dist::Request::iallreduce_sum(b.buffer.data(), static_cast<int64_t>(b.buffer.size()));
    b.launched = true;
    stats_.bytes += static_cast<int64_t>(b.buffer.size() * sizeof(float));
    if (in_backward_) stats_.launched_in_backward++;
}

void GradReducer::grad_ready(TensorImpl* leaf) {
    auto it = std::lower_bound(index_.begin(), index_.end(), std::make_pair(leaf, size_t{0}));
    if (it == index_.end() || it->first != leaf) return;  // not one of the model's parameters
    buckets_[bucket_of_[it->second]].waiting--;
    // MPI needs the same order of collectives on every rank: buckets start in
    // their fixed order, each once it and all before it are complete.
    while (next_launch_ < buckets_.size() && buckets_[next_launch_].waiting == 0)
        launch(buckets_[next_launch_++]);
}

// Progress for the running reductions (Open MPI moves them only inside MPI calls).
void GradReducer::entry_done() {
    for (Bucket& b : buckets_)
        if (b.launched && b.req.pending()) b.req.test();
}

void GradReducer::finish() {
    set_backward_listener(nullptr);
    in_backward_ = false;
    while (next_launch_ < buckets_.size()) launch(buckets_[next_launch_++]);  // unused parameters
    double t0 = now_s();
    for (Bucket& b : buckets_) b.req.wait();
    stats_.exposed_s = now_s() - t0;
    // mean = sum / N, correctly rounded (PyTorch DDP divides too).
    const float n = static_cast<float>(dist::world());
    t0 = now_s();
    for (Bucket& b : buckets_)
        for (size_t j = 0; j < b.params.size(); ++j) {
            const size_t k = b.params[j];
            if (b.buffer[static_cast<size_t>(b.flags) + j] == 0.0f) {  // no rank has a gradient
                params_[k].zero_grad();                                // PyTorch's None, as one process
                continue;
            }
            Tensor g = params_[k].grad();
            if (!g.defined()) {
                g = Tensor::empty(params_[k].shape());
                params_[k].set_grad(g);
            }
            const float* src = b.buffer.data() + offset_[k];
            float* dst = g.data();
            for (int64_t i = 0; i < g.numel(); ++i) dst[i] = src[i] / n;
        }
    stats_.copy_s += now_s() - t0;
}

}  // namespace tg::train
