// A rank's device and model communicator (see include/fedgan/run/rank_device.hpp).
#include "fedgan/run/rank_device.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "fedgan/comm/collective.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"

namespace fedgan::run {

RankDevice resolve_rank_device(comm::Communicator& comm, const DeviceOptions& o) {
  RankDevice out;
  const int index = comm::collective_try(comm, [&] {
    if (o.deterministic) {
      // cuBLAS is deterministic only with a fixed workspace; set before its first handle.
      ::setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
      compat::set_deterministic(true);
    }
    const auto d = choose_device(o.device, comm.local_rank());
    if (o.bf16 && !d.is_cuda())
      throw Error("--precision bf16 needs a CUDA device (this rank computes on the CPU)");
    return d.is_cuda() ? static_cast<int>(d.index()) : -1;
  });
  if (index >= 0) out.device = torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(index));
  const CommKind kind = comm::collective_try(comm, [&] {
    return resolve_comm_kind(o.comm, out.device, comm::nccl_built(), comm.local_size(),
                             compat::cuda_device_count());
  });
  // NCCL only when every rank chose it (auto may differ between nodes): else all use MPI.
  std::int64_t not_nccl = kind == CommKind::Nccl ? 0 : 1;
  comm.allreduce_max(&not_nccl, 1);
  if (!not_nccl) out.nccl = comm::make_nccl_communicator(comm, index);
  const auto lines = comm.allgather("rank " + std::to_string(comm.rank()) + ": " +
                                    out.device.str());
  if (comm.is_root()) {
    std::string all;
    for (const auto& l : lines) all += (all.empty() ? "" : ", ") + l;
    spdlog::info("devices: {}; models summed by {}{}", all,
                 out.nccl ? "NCCL " + comm::nccl_version() + " on the GPU"
                          : (out.device.is_cuda() ? comm.backend() + " (host-staged)"
                                                  : comm.backend()),
                 o.bf16 ? "; bf16 autocast" : "");
  }
  return out;
}

}  // namespace fedgan::run
