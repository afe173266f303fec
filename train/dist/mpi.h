// The one door to MPI (data-parallel training, `mpirun -np N tapegrad train`).
// Everything tapegrad asks of the distributed engine is here: who am I (rank,
// world), the collectives the trainer needs (allreduce of sums and maxima,
// broadcast, barrier), non-blocking allreduce for the gradient buckets
// (train/dist/grad_reducer.h), and abort. The rest of the code never includes <mpi.h>.
//
// Started without mpirun the binary is a plain single process: init() sees no
// launcher in the environment and does not initialise MPI at all (no singleton
// start-up, no daemon), world() is 1 and every collective is the identity. So
// the single-process code paths, and ctest without mpirun, are untouched.
//
// Only the main thread calls MPI (MPI_THREAD_FUNNELED): the OpenMP threads of a
// rank compute, they never communicate.
#pragma once

#include <cstdint>
#include <string>

namespace tg::dist {

// MPI_Init_thread when started by an MPI launcher (Open MPI's mpirun sets
// OMPI_COMM_WORLD_SIZE; PMI_SIZE / PMIX_RANK for other launchers). Idempotent.
void init(int* argc, char*** argv);
// MPI_Finalize if init() started MPI. Call on the normal way out only.
void finalize();
bool active();  // MPI was initialised (world() may still be 1: mpirun -np 1)
int rank();     // 0 without MPI
int world();    // 1 without MPI
bool is_root();
// Ranks of this job on this node (MPI_Comm_split_type SHARED), 1 without MPI.
int local_world();

// Threads per rank when --threads is not given: OMP_NUM_THREADS when set, or one
// process's available_threads() (core/blas.h); under mpirun the cores this
// process may run on when the launcher bound it to a subset (mpirun binds ranks
// to cores for -np <= 2), else the online cores / ranks on this node; at least 1.
int default_threads();

// In-place sums and maxima over all ranks (identity with world() == 1).
void allreduce_sum(double* v, int64_t n);
void allreduce_sum(float* v, int64_t n);
double allreduce_max(double v);
// A yes/no every rank must agree on: true when any rank says true.
bool any(bool v);
void broadcast(std::string& s, int root = 0);
void barrier();

// Within a SoloScope this rank is a world of its own: rank() 0, world() 1,
// is_root() true, every collective the identity (no other rank takes part).
// The sweep's MPI mode runs one whole single-process run per rank this way
// (train/study/sweep.h), so the trainer takes its one-process path. abort() still
// ends the whole job. Scopes do not nest.
class SoloScope {
public:
    SoloScope();
    ~SoloScope();
    SoloScope(const SoloScope&) = delete;
    SoloScope& operator=(const SoloScope&) = delete;

private:
    int rank_, world_;
};

// A non-blocking in-place float sum (MPI_Iallreduce), one gradient bucket.
class Request {
public:
    Request() = default;
    Request(const Request&) = delete;
    Request& operator=(const Request&) = delete;
    Request(Request&& o) noexcept;
    Request& operator=(Request&& o) noexcept;
    ~Request();
    // Starts data[0..n) += the other ranks' data[0..n); no-op with world() == 1.
    static Request iallreduce_sum(float* data, int64_t n);
    bool test();  // MPI_Test: drives Open MPI's progress; true once done
    void wait();  // MPI_Wait
    bool pending() const { return handle_ != 0; }

private:
    uintptr_t handle_ = 0;  // the MPI_Request, stored as an integer (no <mpi.h> here)
};

// Stop notices between ranks that run separate jobs (the sweep's rounds,
// train/study/sweep.h): a rank whose run stopped or failed tells every other rank at
// once (non-blocking sends), and the others poll between their steps without
// blocking, so they stop their runs too instead of finishing them first. One
// object per round, made outside any SoloScope (it talks to the whole job).
// drain(), after a collective that counted the senders, receives every notice
// sent, so none is left to confuse a later round. Inactive (poll() 0) with
// one process.
class StopNotices {
public:
    StopNotices();  // posts this rank's receive
    ~StopNotices();
    StopNotices(const StopNotices&) = delete;
    StopNotices& operator=(const StopNotices&) = delete;
    void send(int code);  // to every other rank; once (a second call does nothing)
    int poll();           // the code another rank sent (the first to arrive), or 0
    bool sent() const;
    void drain(int senders);  // senders: the ranks that called send() this round

private:
    struct Impl;
    Impl* impl_ = nullptr;
};

// Print `message` (once, by whichever rank fails first; see dist.cpp) and end
// every rank of the job with `code`: MPI_Abort under mpirun, exit otherwise.
[[noreturn]] void abort(const std::string& message, int code);

}  // namespace tg::dist
