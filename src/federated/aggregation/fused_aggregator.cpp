// FedAvg's fused aggregator (see include/fedgan/federated/aggregation/fused_aggregator.hpp).
#include "fedgan/federated/aggregation/fused_aggregator.hpp"

#include <cstdio>

#include "fedgan/core/error.hpp"

namespace fedgan::federated {

FedAvgAggregator::FedAvgAggregator(std::vector<std::int64_t> segment_sizes,
                                   const torch::Device& device)
    : Aggregator(std::move(segment_sizes)) {
  allocate(device, 1);
}

void FedAvgAggregator::allocate(const torch::Device& device, std::int64_t levels) {
  const std::int64_t numel = layout().numel();
  m_buffer = torch::zeros({numel + levels + static_cast<std::int64_t>(RoundTotals::kSlots)},
                          torch::TensorOptions().dtype(torch::kFloat64).device(device));
  m_sums = layout().split(m_buffer.narrow(0, 0, numel));
  m_level_weights = m_buffer.narrow(0, numel, levels);
  m_totals = m_buffer.narrow(0, numel + levels, RoundTotals::kSlots);
}

void FedAvgAggregator::set_coverage(std::vector<std::vector<torch::Tensor>> coverage) {
  require(!coverage.empty(), "fedavg: width levels without a level");
  for (const auto& level : coverage) layout().check(level);
  m_coverage = std::move(coverage);
  allocate(m_buffer.device(), static_cast<std::int64_t>(m_coverage.size()));
}

std::string FedAvgAggregator::describe() const {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "one fused allreduce of %.1f MB per round%s",
                static_cast<double>(layout().numel()) * 8 / 1e6,
                m_coverage.empty() ? "" : " (each coordinate averaged over the width levels "
                                          "that hold it)");
  return buf;
}

void FedAvgAggregator::on_begin_round(const RoundContext&) { m_buffer.zero_(); }

Aggregator::Contribution FedAvgAggregator::accumulate(Update update) {
  for (std::size_t i = 0; i < m_sums.size(); ++i)
    m_sums[i].add_(update.segments[i].to(torch::kFloat64), update.weight);
  require(update.level >= 0 && update.level < m_level_weights.size(0),
          "fedavg: an update of width level " + std::to_string(update.level) + " outside the " +
              std::to_string(m_level_weights.size(0)) + " levels");
  m_level_weights[update.level] += update.weight;
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
  const auto weights = m_level_weights.to(torch::kCPU).contiguous();
  const double* w = weights.data_ptr<double>();
  out.total_weight = 0;
  for (std::int64_t l = 0; l < weights.numel(); ++l) out.total_weight += w[l];
  out.denominator = out.total_weight;
  out.sums = m_sums;
  if (!m_coverage.empty()) {
    for (std::size_t seg = 0; seg < m_sums.size(); ++seg) {
      auto cw = torch::zeros_like(m_sums[seg]);
      for (std::size_t l = 0; l < m_coverage.size(); ++l)
        cw.add_(m_coverage[l][seg], w[static_cast<std::int64_t>(l)]);
      out.coordinate_weight.push_back(cw);
    }
  }
  return out;
}

}  // namespace fedgan::federated
