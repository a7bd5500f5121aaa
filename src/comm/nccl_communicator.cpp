// NCCL backend: the fused aggregation buffer is summed on the GPU with one ncclAllReduce, in
// place, on the stream LibTorch launches on (the legacy default stream), so no host copy and no
// synchronisation beyond what the next host read needs. The communicator is created from an id
// that rank 0 makes and the host communicator (MPI) broadcasts, as nccl-tests do; every other
// collective (agreement, strings, host buffers) stays on the host communicator.
#include "fedgan/comm/communicator.hpp"
#include "fedgan/core/error.hpp"

#include <cuda_runtime.h>
#include <nccl.h>
#include <torch/types.h>

#include <cstdlib>
#include <string>

namespace fedgan::comm {
namespace {

void check_nccl(ncclResult_t r, const char* what) {
  if (r != ncclSuccess)
    throw Error(std::string("NCCL: ") + what + " failed: " + ncclGetErrorString(r) +
                " (NCCL_DEBUG=WARN shows why)");
}
void check_cuda(cudaError_t r, const char* what) {
  if (r != cudaSuccess) throw Error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(r));
}

ncclDataType_t nccl_type(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return ncclFloat32;
    case torch::kFloat64: return ncclFloat64;
    case torch::kInt64: return ncclInt64;
    case torch::kUInt8: return ncclUint8;
    default:
      throw Error("NCCL communicator: unsupported dtype " +
                  std::string(c10::toString(t.scalar_type())));
  }
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& host, int device) : m_host(host), m_device(device) {
    ncclUniqueId id{};
    collective_step([&] {
      if (m_host.is_root()) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    });
    m_host.broadcast(&id, sizeof(id), 0);
    collective_step([&] {
      check_cuda(cudaSetDevice(m_device), "cudaSetDevice");
      check_nccl(ncclCommInitRank(&m_comm, m_host.size(), id, m_host.rank()),
                 "ncclCommInitRank (NCCL refuses two ranks on one GPU: use --comm mpi there)");
    });
  }
  ~NcclCommunicator() override {
    if (m_comm) ncclCommDestroy(m_comm);
  }

  int rank() const override { return m_host.rank(); }
  int size() const override { return m_host.size(); }
  int local_rank() const override { return m_host.local_rank(); }
  int local_size() const override { return m_host.local_size(); }
  std::string backend() const override { return "nccl+" + m_host.backend(); }

  // Host memory: the host communicator.
  void allreduce_sum(void* data, std::size_t count, DType type) override {
    m_host.allreduce_sum(data, count, type);
  }
  void allreduce_max(std::int64_t* data, std::size_t count) override {
    m_host.allreduce_max(data, count);
  }
  void broadcast(void* data, std::size_t bytes, int root) override {
    m_host.broadcast(data, bytes, root);
  }
  void allgather(const void* in, std::size_t bytes, void* out) override {
    m_host.allgather(in, bytes, out);
  }
  std::vector<std::vector<std::uint8_t>> allgatherv(const void* in, std::size_t bytes) override {
    return m_host.allgatherv(in, bytes);
  }
  void allgatherv_into(const void* in, void* out, const std::vector<std::size_t>& counts,
                       DType type) override {
    m_host.allgatherv_into(in, out, counts, type);
  }
  void alltoallv(const void* send, const std::vector<std::size_t>& send_counts, void* recv,
                 const std::vector<std::size_t>& recv_counts, DType type) override {
    m_host.alltoallv(send, send_counts, recv, recv_counts, type);
  }
  void barrier() override { m_host.barrier(); }
  [[noreturn]] void abort(int code) override {
    m_host.abort(code);
    std::abort();  // not reached: the host's abort ends the process
  }

  // GPU tensors: NCCL, in place; CPU tensors: the host path.
  void allreduce_sum(at::Tensor& t) override {
    if (!t.is_cuda()) return Communicator::allreduce_sum(t);
    require(t.is_contiguous(), "NCCL communicator: tensor must be contiguous");
    require(t.scalar_type() != torch::kUInt8, "NCCL communicator: no sum of uint8");
    check_nccl(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<std::size_t>(t.numel()),
                             nccl_type(t), ncclSum, m_comm, /*legacy default stream*/ nullptr),
               "ncclAllReduce");
  }
  void broadcast(at::Tensor& t, int root) override {
    if (!t.is_cuda()) return Communicator::broadcast(t, root);
    require(t.is_contiguous(), "NCCL communicator: tensor must be contiguous");
    check_nccl(ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<std::size_t>(t.numel()),
                             nccl_type(t), root, m_comm, nullptr),
               "ncclBroadcast");
  }

 private:
  // Every rank learns of any rank's failure (no rank left waiting in NCCL's init).
  template <class Fn>
  void collective_step(Fn&& fn) {
    std::string message;
    try {
      fn();
    } catch (const std::exception& e) {
      message = e.what();
    }
    m_host.agree_ok(message.empty(), message);
  }

  Communicator& m_host;
  int m_device;
  ncclComm_t m_comm = nullptr;
};

}  // namespace

std::string nccl_version_impl() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "unknown";
  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch.
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
         std::to_string(v % 100);
}

std::unique_ptr<Communicator> make_nccl_communicator_impl(Communicator& host, int cuda_device) {
  return std::make_unique<NcclCommunicator>(host, cuda_device);
}

}  // namespace fedgan::comm
