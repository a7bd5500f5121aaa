// Communicator: the only door to other ranks. Serial (size 1) and MPI backends, and NCCL for
// tensors on the GPU. Only comm/ includes <mpi.h> or <nccl.h>; this header needs no LibTorch
// (the tensor conveniences take at::Tensor, declared here), so light files compile fast.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace fedgan::comm {

// UInt64 sums wrap modulo 2^64 (exactly, in any order): secure aggregation's masked integers.
enum class DType { Float32, Float64, Int64, Byte, UInt64 };

std::size_t dtype_size(DType type);

// Every collective must be called by all ranks in the same order, as in MPI.
class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank among the processes of this node (for rank -> GPU mapping) and their count.
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;
  virtual std::string backend() const = 0;

  // In-place elementwise sum over ranks of a contiguous buffer of `count` elements.
  virtual void allreduce_sum(void* data, std::size_t count, DType type) = 0;
  // In-place elementwise max over ranks (int64 only; used for agreement and timing).
  virtual void allreduce_max(std::int64_t* data, std::size_t count) = 0;
  // Copies `bytes` from `root` into every rank's buffer.
  virtual void broadcast(void* data, std::size_t bytes, int root) = 0;
  // Each rank contributes `bytes`; `out` receives size()*bytes, ordered by rank.
  virtual void allgather(const void* in, std::size_t bytes, void* out) = 0;
  // Variable sizes: returns every rank's bytes, ordered by rank.
  virtual std::vector<std::vector<std::uint8_t>> allgatherv(const void* in, std::size_t bytes) = 0;
  // Variable sizes into one buffer: rank r contributes counts[r] elements of `type` (the
  // caller knows every rank's count); `out` receives them all, ordered by rank.
  virtual void allgatherv_into(const void* in, void* out, const std::vector<std::size_t>& counts,
                               DType type) = 0;
  // All-to-all with variable counts (elements of `type`): this rank sends send_counts[d]
  // elements to rank d, laid out in `send` by destination rank, and receives recv_counts[s]
  // elements from rank s into `recv`, laid out by source rank. Counts must match pairwise
  // (this rank's recv_counts[s] is rank s's send_counts[this rank]).
  virtual void alltoallv(const void* send, const std::vector<std::size_t>& send_counts,
                         void* recv, const std::vector<std::size_t>& recv_counts,
                         DType type) = 0;
  virtual void barrier() = 0;
  // Last resort: ends every rank of the job now.
  [[noreturn]] virtual void abort(int code) = 0;

  // Typed conveniences over the raw calls.
  void allreduce_sum(float* d, std::size_t n) { allreduce_sum(d, n, DType::Float32); }
  void allreduce_sum(double* d, std::size_t n) { allreduce_sum(d, n, DType::Float64); }
  void allreduce_sum(std::int64_t* d, std::size_t n) { allreduce_sum(d, n, DType::Int64); }
  void allreduce_sum(std::uint64_t* d, std::size_t n) { allreduce_sum(d, n, DType::UInt64); }
  // A contiguous tensor of float32/float64/int64 (uint8 too for broadcast), summed in place.
  // CPU tensors go straight to the raw calls; a tensor on a GPU is staged through one host
  // copy each way (Debian's Open MPI is not CUDA-aware), unless the backend reduces on the
  // device itself (NCCL overrides these).
  virtual void allreduce_sum(at::Tensor& tensor);
  virtual void broadcast(at::Tensor& tensor, int root);
  void broadcast(std::string& text, int root);
  std::vector<std::string> allgather(const std::string& text);

  // Error agreement: every rank passes whether it is fine. If any rank is not, every rank
  // throws fedgan::Error (marked collective) carrying the first failing rank's message, so no
  // rank is left waiting in a later collective. Returns normally when all are fine.
  void agree_ok(bool local_ok, const std::string& message);

  // True on one rank per job: the rank that writes files and talks to the user.
  bool is_root() const { return rank() == 0; }
};

// The serial communicator: a job of one rank; every collective is a no-op or a copy.
std::unique_ptr<Communicator> make_serial_communicator();

// Initialises MPI if needed (MPI_THREAD_FUNNELED) and wraps MPI_COMM_WORLD.
std::unique_ptr<Communicator> make_mpi_communicator(int* argc, char*** argv);

// Finalizes MPI when this process initialised it; safe to call when MPI was never started.
void finalize_mpi();

// NCCL: whether this build has the backend (FEDGAN_NCCL), and the library's version
// ("2.28.3"), or "" when the backend is absent.
bool nccl_built();
std::string nccl_version();
// Wraps `host` (kept by reference; it bootstraps NCCL with one broadcast and serves every
// host-memory collective and the error agreement): tensors on `cuda_device` are reduced and
// broadcast by NCCL, on the GPU, in place. Collective; throws an agreed fedgan::Error when the
// build has no NCCL or NCCL cannot start (e.g. two ranks on one GPU, which NCCL refuses).
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, int cuda_device);

}  // namespace fedgan::comm
