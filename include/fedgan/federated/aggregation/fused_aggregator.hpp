// FedAvg's aggregator (McMahan et al. 2017), fused: Σ weight·Δ of the four segments, Σ weight and
// the round's totals in one float64 buffer, so that a single allreduce aggregates everything.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/federated/aggregation/aggregator.hpp"

namespace fedgan::federated {

// Products of a float32 Δ and an integer weight are exact in float64, which is why R ranks
// give the same mean as one rank (docs/DESIGN.md, "Life of a round").
class FedAvgAggregator final : public Aggregator {
 public:
  // The buffer lives on `device`: on a GPU the deltas are added there and the backend reduces
  // it in place (NCCL) or through one host copy each way (MPI).
  FedAvgAggregator(std::vector<std::int64_t> segment_sizes, const torch::Device& device);
  std::string name() const override { return to_string(AggregationRule::FedAvg); }
  std::string describe() const override;
  // Width levels: one Σ weight slot per level in the buffer (still one allreduce); each
  // coordinate's weight is Σ over levels of the level's Σ weight times its 0/1 coverage.
  void set_coverage(std::vector<std::vector<torch::Tensor>> coverage) override;

 protected:
  void on_begin_round(const RoundContext& round) override;
  Contribution accumulate(Update update) override;
  AggregateResult reduce(comm::Communicator& comm, const RoundTotals& local) override;

 private:
  // Allocates the buffer for `levels` weight slots.
  void allocate(const torch::Device& device, std::int64_t levels);
  // Layout: [segments (layout()) | Σ weight per level (one without levels) | RoundTotals' slots].
  torch::Tensor m_buffer;
  torch::Tensor m_level_weights;      // the view of the weight slots
  std::vector<std::vector<torch::Tensor>> m_coverage;  // per level, per segment (width levels)
  std::vector<torch::Tensor> m_sums;  // one view of the buffer per segment
  torch::Tensor m_totals;             // the view of the totals' slots
};

}  // namespace fedgan::federated
