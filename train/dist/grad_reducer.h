// Data parallelism with PyTorch DDP's semantics over MPI (train/dist/mpi.h).
//
// Global batch. --batch-size B is the global batch: every rank builds the same
// batch the single process builds (same order, same epochs) and keeps its rows
// [r B/N, (r+1) B/N) (rank_rows). B not divisible by N is refused for training;
// evaluation batches (a last val batch may be short) split as evenly as the rows
// allow, a rank may hold none.
//
// Loss and gradient. The single process's loss is the mean over B*T tokens,
// L = (1/N) sum_r L_r, where L_r is rank r's mean over its (B/N)*T tokens; so the
// gradient is (1/N) sum_r dL_r/dw: every rank backpropagates its own L_r, the
// gradients are summed by allreduce and scaled by 1/N. Every rank then holds
// the same gradient, computes the same (global) norm, clips and steps the
// optimizer identically, and the weights stay equal without being broadcast.
//
// Buckets (GradReducer). Parameters are grouped, in the reverse of their
// registration order (roughly the order backward finishes them), into buckets of
// about bucket_mb MB. The tape tells the reducer when a parameter's gradient is
// final (core/tape.h BackwardListener: its first use in the forward has been
// walked); when all of a bucket's gradients are final (and the buckets before
// it have started: MPI needs every rank to start collectives in the same order),
// they are copied into the bucket's buffer and a non-blocking MPI_Iallreduce
// starts, while backward goes on. Open MPI advances a non-blocking collective only inside MPI calls, so
// after every tape entry the reducer calls MPI_Test on the running buckets.
// finish() waits for the rest and copies the sums back, scaled by 1/N.
//
// A parameter without a gradient (unused by the loss: PyTorch's None grad,
// which the optimizer skips). Each bucket also sums one flag per parameter, 1
// where this rank has a gradient: a parameter no rank gave a gradient stays
// without one, as in the single process (not a zero gradient, which AdamW's
// decay and moments would act on); one that some ranks gave gets the mean
// with zeros for the others (PyTorch DDP's find_unused_parameters).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tape.h"
#include "core/tensor.h"
#include "train/data/text_loader.h"
#include "train/dist/mpi.h"

namespace tg::train {

// Rows [begin, end) of a batch of `rows` that rank `rank` of `world` holds.
struct RowRange {
    int64_t begin = 0, end = 0;
    int64_t size() const { return end - begin; }
};
RowRange rank_rows(int64_t rows, int rank, int world);
// Those rows of a [B, T] batch.
Batch slice_rows(const Batch& b, RowRange r);

// The single process's loss of one batch from the ranks' shares: each rank
// passes the mean loss over its rows (any value when it holds none) and the
// rows it holds; returns sum_r loss_r rows_r / B on every rank. Collective.
double global_batch_loss(double local_mean, int64_t local_rows, int64_t batch_rows);

// Per-step communication figures, for the bench and the profile.
struct ReduceStats {
    int64_t buckets = 0, bytes = 0;
    double exposed_s = 0;              // time finish() waited for the reductions after backward
    double copy_s = 0;                 // packing and unpacking the bucket buffers
    int64_t launched_in_backward = 0;  // buckets started before backward ended
};

class GradReducer : public BackwardListener {
public:
    GradReducer(const std::vector<Tensor>& params, double bucket_mb);
    // Around loss.backward(): begin() attaches to the tape, finish() waits for
    // every bucket, writes the averaged gradients and detaches.
    void begin();
    void finish();
    void grad_ready(TensorImpl* leaf) override;
    void entry_done() override;
    const ReduceStats& last() const { return stats_; }
    int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }

private:
    struct Bucket {
        std::vector<size_t> params;  // indices into params_
        std::vector<float> buffer;   // the gradients, then one has-gradient flag per parameter
        int64_t flags = 0;           // where the flags start in buffer
        int64_t waiting = 0;         // parameters whose gradient is not final yet
        dist::Request req;
        bool launched = false;
    };
    void launch(Bucket& b);

    std::vector<Tensor> params_;
    std::vector<size_t> bucket_of_;  // parameter -> bucket
    std::vector<int64_t> offset_;    // parameter -> offset in its bucket's buffer
    std::vector<Bucket> buckets_;
    std::vector<std::pair<TensorImpl*, size_t>> index_;  // leaf -> parameter, sorted
    size_t next_launch_ = 0;  // buckets start in order (MPI: same order on every rank)
    ReduceStats stats_;
    bool in_backward_ = false;
};

}  // namespace tg::train
