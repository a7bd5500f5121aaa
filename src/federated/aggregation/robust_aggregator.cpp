// Robust aggregators (see include/fedgan/federated/aggregation/robust_aggregator.hpp).
#include "fedgan/federated/aggregation/robust_aggregator.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>

namespace fedgan::federated {
namespace {

class RobustAggregator final : public Aggregator {
 public:
  RobustAggregator(const AggregatorConfig& config, std::vector<std::int64_t> sizes,
                   const torch::Device& device)
      : Aggregator(std::move(sizes)), m_config(config), m_device(device) {}
  std::string name() const override { return to_string(m_config.rule); }
  std::string describe() const override {
    char buf[200];
    const double mb = static_cast<double>(layout().numel()) * 4 / 1e6;
    if (m_config.rule == AggregationRule::NormBound)
      std::snprintf(buf, sizeof(buf),
                    "keeps this rank's updates (%.1f MB each); one float64 allreduce of %.1f MB "
                    "after clipping to the median norm",
                    mb, 2 * mb);
    else
      std::snprintf(
          buf, sizeof(buf),
          "keeps this rank's updates (%.1f MB each); an all-to-all of coordinate "
          "shards (P/R updates' worth per rank), an allgather of %.1f MB%s",
          mb, mb,
          m_config.rule == AggregationRule::Krum || m_config.rule == AggregationRule::MultiKrum
              ? ", a P×P Gram allreduce"
              : "");
    return buf;
  }

 protected:
  void on_begin_round(const RoundContext&) override { m_updates.clear(); }
  Contribution accumulate(Update update) override {
    m_updates.push_back({update.party, update.weight, layout().flatten(update.segments)});
    return Contribution::Aggregated;
  }
  AggregateResult reduce(comm::Communicator& comm, const RoundTotals& local) override {
    AggregateResult out;
    out.totals = sum_totals(comm, local);
    std::vector<PartyVector> mine;
    for (const auto& u : m_updates) mine.push_back({u.party, u.weight, u.values.data_ptr<float>()});
    const RobustResult result = robust_aggregate(comm, m_config, mine, layout().numel());
    m_updates.clear();  // the memory goes back before the server step
    // Fewer updates than parties drawn (skipped ones) can leave the trimmed mean trimming
    // nothing: say so, every round it happens (setup refuses it for a full round).
    if (m_config.rule == AggregationRule::TrimmedMean && comm.rank() == 0) {
      const auto warning =
          trimmed_mean_round_warning(m_config.trim_beta, result.parties,
                                     static_cast<int>(round().participants.size()), round().round);
      if (!warning.empty()) spdlog::warn("{}", warning);
    }
    out.total_weight = result.total_weight;
    const auto options = torch::TensorOptions().dtype(torch::kFloat64).device(m_device);
    if (result.parties == 0) {
      out.sums = layout().split(torch::zeros({layout().numel()}, options));
      out.denominator = 0;
      return out;
    }
    // The rule's value is the aggregate itself: denominator 1.
    out.sums = layout().split(torch::from_blob(const_cast<float*>(result.update.data()),
                                               {layout().numel()}, torch::kFloat32)
                                  .to(options));
    out.denominator = 1;
    return out;
  }

 private:
  struct Kept {
    int party;
    double weight;
    torch::Tensor values;  // flat float32 on the CPU
  };
  AggregatorConfig m_config;
  torch::Device m_device;
  std::vector<Kept> m_updates;
};

}  // namespace

std::unique_ptr<Aggregator> make_robust_aggregator(const AggregatorConfig& config,
                                                   std::vector<std::int64_t> segment_sizes,
                                                   const torch::Device& device) {
  return std::make_unique<RobustAggregator>(config, std::move(segment_sizes), device);
}

}  // namespace fedgan::federated
