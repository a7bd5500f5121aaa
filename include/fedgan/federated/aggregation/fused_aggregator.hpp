// FusedAggregator: Σ n_k·Δ_k for several flat segments (G, D) plus Σ n_k and a few statistics,
// kept in one float64 buffer so a single allreduce aggregates everything.
#pragma once

#include "fedgan/comm/communicator.hpp"

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace fedgan::federated {

class FusedAggregator {
 public:
  // The buffer lives on `device`: on a GPU the deltas are added there and the backend reduces
  // it in place (NCCL) or through one host copy each way (MPI).
  FusedAggregator(std::vector<std::int64_t> segment_sizes, int stat_slots,
                  const torch::Device& device = torch::kCPU);

  void reset();
  // Adds weight·delta[i] to segment i (float32 deltas; products are exact in float64).
  void add(const std::vector<torch::Tensor>& deltas, double weight);
  // Free float64 slots for statistics summed with the same collective.
  torch::Tensor stats() { return m_buffer.narrow(0, m_model_numel + 1, m_stat_slots); }
  // The one collective: sums the whole buffer over ranks in place.
  void allreduce(comm::Communicator& comm) { comm.allreduce_sum(m_buffer); }
  double total_weight() const { return m_buffer[m_model_numel].item<double>(); }
  std::size_t segments() const { return m_sizes.size(); }
  // Σ weight·delta of segment i in float64 (a view into the buffer).
  torch::Tensor sum(std::size_t segment) const {
    return m_buffer.narrow(0, m_offsets.at(segment), m_sizes.at(segment));
  }

 private:
  std::vector<std::int64_t> m_sizes, m_offsets;
  std::int64_t m_model_numel = 0;
  int m_stat_slots;
  torch::Tensor m_buffer;
};

}  // namespace fedgan::federated
