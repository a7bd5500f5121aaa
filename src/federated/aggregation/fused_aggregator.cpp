// FusedAggregator (see include/fedgan/federated/aggregation/fused_aggregator.hpp).
#include "fedgan/federated/aggregation/fused_aggregator.hpp"

#include "fedgan/core/error.hpp"

namespace fedgan::federated {

FusedAggregator::FusedAggregator(std::vector<std::int64_t> sizes, int stat_slots,
                                 const torch::Device& device)
    : m_sizes(std::move(sizes)), m_stat_slots(stat_slots) {
  for (auto n : m_sizes) {
    m_offsets.push_back(m_model_numel);
    m_model_numel += n;
  }
  // Layout: [segments... | Σ weight | statistics...]
  m_buffer = torch::zeros({m_model_numel + 1 + stat_slots},
                          torch::TensorOptions().dtype(torch::kFloat64).device(device));
}

void FusedAggregator::reset() { m_buffer.zero_(); }

void FusedAggregator::add(const std::vector<torch::Tensor>& deltas, double weight) {
  require(deltas.size() == m_sizes.size(), "aggregator: wrong number of segments");
  for (std::size_t i = 0; i < deltas.size(); ++i) {
    require(deltas[i].numel() == m_sizes[i], "aggregator: segment " + std::to_string(i) +
                                                 " has the wrong size");
    m_buffer.narrow(0, m_offsets[i], m_sizes[i]).add_(deltas[i].to(torch::kFloat64), weight);
  }
  m_buffer[m_model_numel] += weight;
}

}  // namespace fedgan::federated
