// Robust aggregators (see include/fedgan/federated/aggregation/robust_aggregator.hpp).
#include "fedgan/federated/aggregation/robust_aggregator.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <numeric>

#include "fedgan/core/error.hpp"

namespace fedgan::federated {
namespace {

class RobustAggregator final : public Aggregator {
 public:
  RobustAggregator(const RobustConfig& config, std::vector<std::int64_t> sizes,
                   const torch::Device& device)
      : m_config(config), m_sizes(std::move(sizes)), m_device(device) {
    m_numel = std::accumulate(m_sizes.begin(), m_sizes.end(), std::int64_t{0});
  }
  std::string name() const override { return to_string(m_config.rule); }
  std::string describe() const override {
    char buf[200];
    const double mb = static_cast<double>(m_numel) * 4 / 1e6;
    if (m_config.rule == RobustRule::NormBound)
      std::snprintf(buf, sizeof(buf),
                    "keeps this rank's updates (%.1f MB each); one float64 allreduce of %.1f MB "
                    "after clipping to the median norm",
                    mb, 2 * mb);
    else
      std::snprintf(buf, sizeof(buf),
                    "keeps this rank's updates (%.1f MB each); an all-to-all of coordinate "
                    "shards (P/R updates' worth per rank), an allgather of %.1f MB%s",
                    mb, mb,
                    m_config.rule == RobustRule::Krum || m_config.rule == RobustRule::MultiKrum
                        ? ", a P×P Gram allreduce"
                        : "");
    return buf;
  }

 protected:
  void on_begin_round(const RoundContext&) override { m_updates.clear(); }
  void accumulate(Update update) override {
    require(update.segments.size() == m_sizes.size(), "aggregator: wrong number of segments");
    std::vector<torch::Tensor> parts;
    for (std::size_t i = 0; i < m_sizes.size(); ++i) {
      require(update.segments[i].numel() == m_sizes[i],
              "aggregator: segment " + std::to_string(i) + " has the wrong size");
      parts.push_back(update.segments[i].to(torch::kCPU, torch::kFloat32).reshape({-1}));
    }
    m_updates.push_back({update.party, update.weight, torch::cat(parts).contiguous()});
  }
  AggregateResult reduce(comm::Communicator& comm, const RoundTotals& local) override {
    AggregateResult out;
    out.totals = sum_totals(comm, local);
    std::vector<PartyVector> mine;
    for (const auto& u : m_updates) mine.push_back({u.party, u.weight, u.values.data_ptr<float>()});
    const RobustResult result = robust_aggregate(comm, m_config, mine, m_numel);
    m_updates.clear();  // the memory goes back before the server step
    // Fewer updates than parties drawn (skipped ones) can leave the trimmed mean trimming
    // nothing: say so, every round it happens (setup refuses it for a full round).
    if (m_config.rule == RobustRule::TrimmedMean && comm.rank() == 0) {
      const auto warning =
          trimmed_mean_round_warning(m_config.trim_beta, result.parties,
                                     static_cast<int>(round().participants.size()), round().round);
      if (!warning.empty()) spdlog::warn("{}", warning);
    }
    out.total_weight = result.total_weight;
    const auto options = torch::TensorOptions().dtype(torch::kFloat64).device(m_device);
    if (result.parties == 0) {
      for (auto n : m_sizes) out.sums.push_back(torch::zeros({n}, options));
      out.denominator = 0;
      return out;
    }
    // The rule's value is the aggregate itself: denominator 1.
    auto value =
        torch::from_blob(const_cast<float*>(result.update.data()), {m_numel}, torch::kFloat32)
            .to(options);
    std::int64_t at = 0;
    for (auto n : m_sizes) {
      out.sums.push_back(value.narrow(0, at, n));
      at += n;
    }
    out.denominator = 1;
    return out;
  }

 private:
  struct Kept {
    int party;
    double weight;
    torch::Tensor values;  // flat float32 on the CPU
  };
  RobustConfig m_config;
  std::vector<std::int64_t> m_sizes;
  std::int64_t m_numel = 0;
  torch::Device m_device;
  std::vector<Kept> m_updates;
};

}  // namespace

std::unique_ptr<Aggregator> make_robust_aggregator(const RobustConfig& config,
                                                   std::vector<std::int64_t> segment_sizes,
                                                   const torch::Device& device) {
  return std::make_unique<RobustAggregator>(config, std::move(segment_sizes), device);
}

}  // namespace fedgan::federated
