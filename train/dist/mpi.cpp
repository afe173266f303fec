#include "train/dist/mpi.h"

// The C API only: without these, <mpi.h> in C++ drags in the deprecated C++
// bindings, which need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1

#include <fcntl.h>
#include <fmt/format.h>
#include <mpi.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>
#include <vector>

#include "core/blas.h"
#include "core/tensor.h"

namespace tg::dist {
namespace {

bool g_init = false;
int g_rank = 0, g_world = 1, g_local = 1;
bool g_solo = false;  // inside a SoloScope: g_rank, g_world are 0, 1
int g_err_fd = 2;     // where abort() writes: the real stderr, also on silenced ranks

static_assert(sizeof(MPI_Request) <= sizeof(uintptr_t), "MPI_Request must fit the handle");

bool launched_by_mpi() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
        if (std::getenv(v)) return true;
    return false;
}

void check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw Error(std::string("tapegrad: MPI ") + what +
                " failed: " + std::string(msg, static_cast<size_t>(len)));
}

// MPI counts are int: long buffers go in chunks of at most 2^30 elements.
constexpr int64_t kChunk = int64_t{1} << 30;

template <class T>
void allreduce(T* v, int64_t n, MPI_Datatype type, MPI_Op op) {
    if (g_world == 1) return;
    for (int64_t off = 0; off < n; off += kChunk)
        check(MPI_Allreduce(MPI_IN_PLACE, v + off, static_cast<int>(std::min(kChunk, n - off)), type, op,
                            MPI_COMM_WORLD),
              "allreduce");
}

}  // namespace

void init(int* argc, char*** argv) {
    if (g_init || !launched_by_mpi()) return;
    int provided = 0;
    check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "init");
    g_init = true;
    check(MPI_Comm_rank(MPI_COMM_WORLD, &g_rank), "comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &g_world), "comm_size");
    // The main thread alone calls MPI while OpenMP threads compute: that needs
    // FUNNELED at least (Open MPI gives MULTIPLE; an MPI built without threads does not).
    if (provided < MPI_THREAD_FUNNELED)
        throw Error(fmt::format("tapegrad: this MPI library provides thread level {}, below "
                                "MPI_THREAD_FUNNELED ({}), which tapegrad's threaded ranks need",
                                provided, static_cast<int>(MPI_THREAD_FUNNELED)));
    // Errors come back as codes (check() turns them into exceptions, which end
    // the job through abort()) instead of Open MPI's default of aborting silently.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm node;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node),
          "comm_split_type");
    check(MPI_Comm_size(node, &g_local), "comm_size");
    check(MPI_Comm_free(&node), "comm_free");
    // Rank 0 alone prints: the others' stdout and stderr go to /dev/null, and
    // abort() keeps a copy of stderr for the one message that must get out.
    // TAPEGRAD_ALL_RANKS_PRINT=1 keeps every rank's output (debugging).
    const char* all = std::getenv("TAPEGRAD_ALL_RANKS_PRINT");
    if (g_rank != 0 && !(all && std::string(all) == "1")) {
        std::fflush(stdout);
        std::fflush(stderr);
        g_err_fd = dup(2);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0 && g_err_fd >= 0) {
            dup2(null, 1);
            dup2(null, 2);
            close(null);
        }
        if (g_err_fd < 0) g_err_fd = 2;
    }
}

void finalize() {
    if (!g_init) return;
    MPI_Finalize();
    g_init = false;
}

int default_threads() {
    // One process, or the user's OMP_NUM_THREADS (read as per rank, as libgomp does):
    // the count every subcommand defaults to.
    if (g_local <= 1 || std::getenv("OMP_NUM_THREADS")) return available_threads();
    cpu_set_t set;
    CPU_ZERO(&set);
    int usable = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n = usable < online ? usable : usable / g_local;
    return std::max(1, n);
}

bool active() { return g_init; }
int rank() { return g_rank; }
int world() { return g_world; }
bool is_root() { return g_rank == 0; }
int local_world() { return g_local; }

void allreduce_sum(double* v, int64_t n) { allreduce(v, n, MPI_DOUBLE, MPI_SUM); }
void allreduce_sum(float* v, int64_t n) { allreduce(v, n, MPI_FLOAT, MPI_SUM); }

double allreduce_max(double v) {
    allreduce(&v, 1, MPI_DOUBLE, MPI_MAX);
    return v;
}

bool any(bool v) {
    if (g_world == 1) return v;
    int x = v ? 1 : 0;
    check(MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD), "allreduce");
    return x != 0;
}

void broadcast(std::string& s, int root) {
    if (g_world == 1) return;
    long long n = static_cast<long long>(s.size());
    check(MPI_Bcast(&n, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD), "broadcast");
    s.resize(static_cast<size_t>(n));
    if (n > 0) check(MPI_Bcast(s.data(), static_cast<int>(n), MPI_CHAR, root, MPI_COMM_WORLD), "broadcast");
}

void barrier() {
    if (g_world > 1) check(MPI_Barrier(MPI_COMM_WORLD), "barrier");
}

// Every collective returns at once when g_world == 1, so a world of one needs
// no communicator of its own: the scope hides the real rank and size.
SoloScope::SoloScope() : rank_(g_rank), world_(g_world) {
    if (g_solo) throw Error("tapegrad: dist::SoloScope: scopes do not nest");
    g_solo = true;
    g_rank = 0;
    g_world = 1;
}
SoloScope::~SoloScope() {
    g_rank = rank_;
    g_world = world_;
    g_solo = false;
}

// ---- non-blocking allreduce ----

Request::Request(Request&& o) noexcept : handle_(o.handle_) { o.handle_ = 0; }
Request& Request::operator=(Request&& o) noexcept {
    std::swap(handle_, o.handle_);
    return *this;
}
Request::~Request() {
    if (!pending()) return;
    try {
        wait();  // a buffer must not be freed under a running reduction
    } catch (...) {}
}

Request Request::iallreduce_sum(float* data, int64_t n) {
    Request r;
    if (g_world == 1 || n == 0) return r;
    if (n > kChunk) throw Error("tapegrad: MPI: a gradient bucket of more than 2^30 floats (--bucket-mb)");
    MPI_Request q;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &q),
          "iallreduce");
    std::memcpy(&r.handle_, &q, sizeof q);
    return r;
}

bool Request::test() {
    if (!pending()) return true;
    MPI_Request q;
    std::memcpy(&q, &handle_, sizeof q);
    int done = 0;
    check(MPI_Test(&q, &done, MPI_STATUS_IGNORE), "test");
    if (done) handle_ = 0;
    return done != 0;
}

void Request::wait() {
    if (!pending()) return;
    MPI_Request q;
    std::memcpy(&q, &handle_, sizeof q);
    handle_ = 0;
    check(MPI_Wait(&q, MPI_STATUS_IGNORE), "wait");
}

// ---- stop notices ----

namespace {
constexpr int kStopTag = 7;  // the only point-to-point messages tapegrad sends
}

struct StopNotices::Impl {
    int world = 1, rank = 0;
    int in = 0, out = 0;  // the received and the sent code
    MPI_Request recv = MPI_REQUEST_NULL;
    bool got = false, sent = false, drained = false;
    std::vector<MPI_Request> sends;
};

StopNotices::StopNotices() {
    if (!g_init || g_world == 1) return;
    impl_ = new Impl;
    impl_->world = g_world;
    impl_->rank = g_rank;
    check(MPI_Irecv(&impl_->in, 1, MPI_INT, MPI_ANY_SOURCE, kStopTag, MPI_COMM_WORLD, &impl_->recv), "irecv");
}

// After drain() nothing is pending. Without it (an exception ends the round,
// and the job is about to be aborted) the receive is cancelled and the sends
// (one int each: sent eagerly) are let go.
StopNotices::~StopNotices() {
    if (!impl_) return;
    if (!impl_->drained) {
        if (!impl_->got) {
            MPI_Cancel(&impl_->recv);
            MPI_Wait(&impl_->recv, MPI_STATUS_IGNORE);
        }
        for (MPI_Request& r : impl_->sends) MPI_Request_free(&r);
    }
    delete impl_;
}

void StopNotices::send(int code) {
    if (!impl_ || impl_->sent) return;
    impl_->sent = true;
    impl_->out = code;
    for (int r = 0; r < impl_->world; ++r) {
        if (r == impl_->rank) continue;
        MPI_Request q;
        check(MPI_Isend(&impl_->out, 1, MPI_INT, r, kStopTag, MPI_COMM_WORLD, &q), "isend");
        impl_->sends.push_back(q);
    }
}

int StopNotices::poll() {
    if (!impl_) return 0;
    if (!impl_->got) {
        int done = 0;
        check(MPI_Test(&impl_->recv, &done, MPI_STATUS_IGNORE), "test");
        impl_->got = done != 0;
    }
    return impl_->got ? impl_->in : 0;
}

bool StopNotices::sent() const { return impl_ && impl_->sent; }

void StopNotices::drain(int senders) {
    if (!impl_) return;
    int expect = senders - (impl_->sent ? 1 : 0);  // notices addressed to this rank
    if (expect == 0 && !impl_->got) {
        check(MPI_Cancel(&impl_->recv), "cancel");
        check(MPI_Wait(&impl_->recv, MPI_STATUS_IGNORE), "wait");
    } else if (expect > 0) {
        if (!impl_->got) check(MPI_Wait(&impl_->recv, MPI_STATUS_IGNORE), "wait");
        impl_->got = true;
        for (int k = 1; k < expect; ++k) {
            int code = 0;
            check(MPI_Recv(&code, 1, MPI_INT, MPI_ANY_SOURCE, kStopTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
                  "recv");
        }
    }
    if (!impl_->sends.empty())
        check(MPI_Waitall(static_cast<int>(impl_->sends.size()), impl_->sends.data(), MPI_STATUSES_IGNORE),
              "waitall");
    impl_->sends.clear();
    impl_->drained = true;
}

// Errors that every rank meets (a bad flag value, a missing file) would print N
// times; rank 0 prints at once and aborts the job, the others wait 3 seconds
// first (mpirun takes about a second to kill them), so a shared error is printed
// once, and a rank that fails alone still ends the job 3 seconds later.
void abort(const std::string& message, int code) {
    if (!g_init) {
        std::cerr << message << std::endl;
        std::exit(code);
    }
    if (g_rank != 0) std::this_thread::sleep_for(std::chrono::seconds(3));
    std::cerr.flush();
    std::string line = message + (g_world > 1 ? " [rank " + std::to_string(g_rank) + "]" : "") + "\n";
    [[maybe_unused]] ssize_t w = ::write(g_err_fd, line.data(), line.size());
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
}

}  // namespace tg::dist
