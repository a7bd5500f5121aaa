// FedAvg's fused aggregator (see include/fedgan/federated/aggregation/fused_aggregator.hpp).
#include "fedgan/federated/aggregation/fused_aggregator.hpp"

#include <cstdio>

namespace fedgan::federated {

FedAvgAggregator::FedAvgAggregator(std::vector<std::int64_t> segment_sizes,
                                   const torch::Device& device)
    : Aggregator(std::move(segment_sizes)) {
  const std::int64_t numel = layout().numel();
  m_buffer = torch::zeros({numel + 1 + static_cast<std::int64_t>(RoundTotals::kSlots)},
                          torch::TensorOptions().dtype(torch::kFloat64).device(device));
  m_sums = layout().split(m_buffer.narrow(0, 0, numel));
  m_totals = m_buffer.narrow(0, numel + 1, RoundTotals::kSlots);
}

std::string FedAvgAggregator::describe() const {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "one fused allreduce of %.1f MB per round",
                static_cast<double>(layout().numel()) * 8 / 1e6);
  return buf;
}

void FedAvgAggregator::on_begin_round(const RoundContext&) { m_buffer.zero_(); }

Aggregator::Contribution FedAvgAggregator::accumulate(Update update) {
  for (std::size_t i = 0; i < m_sums.size(); ++i)
    m_sums[i].add_(update.segments[i].to(torch::kFloat64), update.weight);
  m_buffer[layout().numel()] += update.weight;
  return Contribution::Aggregated;
}

AggregateResult FedAvgAggregator::reduce(comm::Communicator& comm, const RoundTotals& local) {
  // The totals travel in the buffer's last slots: still one collective.
  double slots[RoundTotals::kSlots];
  local.to(slots);
  m_totals.copy_(torch::from_blob(slots, {RoundTotals::kSlots}, torch::kFloat64));
  comm.allreduce_sum(m_buffer);
  const auto summed = m_totals.to(torch::kCPU).contiguous();
  AggregateResult out;
  out.totals.from(summed.data_ptr<double>());
  out.total_weight = m_buffer[layout().numel()].item<double>();
  out.denominator = out.total_weight;
  out.sums = m_sums;
  return out;
}

}  // namespace fedgan::federated
