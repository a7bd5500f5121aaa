// Where a rank computes (--device) and what sums its models (--comm): the job's own
// communicator (MPI or serial; GPU buffers staged through host memory) or NCCL on top of it.
// Resolved and agreed on every rank at the start of a run.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/core/device.hpp"

namespace fedgan::run {

struct DeviceOptions {
  DeviceKind device = DeviceKind::Auto;
  CommKind comm = CommKind::Auto;
  bool bf16 = false;           // --precision bf16 (needs a CUDA device)
  bool deterministic = false;  // GPU: deterministic algorithms only
};

struct RankDevice {
  torch::Device device = torch::kCPU;
  std::unique_ptr<comm::Communicator> nccl;  // set when the models are summed by NCCL
  // The communicator a round's collectives use.
  comm::Communicator& round_comm(comm::Communicator& host) { return nccl ? *nccl : host; }
};

// Collective: every rank resolves its device, NCCL is used only when every rank chose it,
// and rank 0 logs each rank's device.
RankDevice resolve_rank_device(comm::Communicator& comm, const DeviceOptions& options);

}  // namespace fedgan::run
