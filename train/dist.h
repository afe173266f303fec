// The one door to MPI (data-parallel training, `mpirun -np N tapegrad train`).
// Everything tapegrad asks of the distributed engine is here: who am I (rank,
// world), the collectives the trainer needs (allreduce of sums and maxima,
// broadcast, barrier), non-blocking allreduce for the gradient buckets
// (train/ddp.h), and abort. The rest of the code never includes <mpi.h>.
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

// Print `message` (once, by whichever rank fails first; see dist.cpp) and end
// every rank of the job with `code`: MPI_Abort under mpirun, exit otherwise.
[[noreturn]] void abort(const std::string& message, int code);

}  // namespace tg::dist
