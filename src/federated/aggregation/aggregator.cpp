// Aggregators and their factory (see include/fedgan/federated/aggregation/aggregator.hpp).
#include "fedgan/federated/aggregation/aggregator.hpp"

#include <cstdio>

#include "fedgan/core/error.hpp"
#include "fedgan/federated/aggregation/fused_aggregator.hpp"
#include "fedgan/federated/aggregation/robust_aggregator.hpp"
#include "fedgan/federated/round/participation.hpp"

namespace fedgan::federated {
namespace {

// FedAvg (McMahan et al. 2017): Σ weight·Δ, Σ weight and the round's totals in one float64
// buffer, summed by one allreduce. Products of a float32 Δ and an integer weight are exact in
// float64, which is why R ranks give the same mean as one rank (docs/DESIGN.md).
class FedAvgAggregator final : public Aggregator {
 public:
  FedAvgAggregator(std::vector<std::int64_t> sizes, const torch::Device& device)
      : m_fused(sizes, RoundTotals::kSlots, device) {
    for (auto n : sizes) m_model_numel += n;
  }
  std::string name() const override { return "fedavg"; }
  std::string describe() const override {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "one fused allreduce of %.1f MB per round",
                  static_cast<double>(m_model_numel) * 8 / 1e6);
    return buf;
  }

 protected:
  void on_begin_round(const RoundContext&) override { m_fused.reset(); }
  void accumulate(Update update) override { m_fused.add(update.segments, update.weight); }
  AggregateResult reduce(comm::Communicator& comm, const RoundTotals& local) override {
    // The totals travel in the buffer's statistics slots: still one collective.
    auto stats = m_fused.stats();
    double slots[RoundTotals::kSlots];
    local.to(slots);
    stats.copy_(torch::from_blob(slots, {RoundTotals::kSlots}, torch::kFloat64));
    m_fused.allreduce(comm);
    const auto summed = stats.to(torch::kCPU).contiguous();
    AggregateResult out;
    out.totals.from(summed.data_ptr<double>());
    out.total_weight = m_fused.total_weight();
    out.denominator = out.total_weight;
    for (std::size_t i = 0; i < m_fused.segments(); ++i) out.sums.push_back(m_fused.sum(i));
    return out;
  }

 private:
  FusedAggregator m_fused;
  std::int64_t m_model_numel = 0;
};

}  // namespace

void Aggregator::begin_round(const RoundContext& round) {
  m_round = round;
  m_local = RoundTotals{};
  on_begin_round(round);
}

void Aggregator::add(Update update) {
  require(update.finite, "aggregator: a non-finite update of party " +
                             std::to_string(update.party) + " reached aggregation");
  m_local.d_loss += update.d_loss;
  m_local.g_loss += update.g_loss;
  m_local.parties += 1;
  m_local.images += static_cast<double>(update.images);
  m_local.samples += static_cast<double>(update.samples);
  m_local.sample_steps += static_cast<double>(update.samples) * static_cast<double>(update.steps);
  m_local.ada_sign_sum += update.ada_sign_sum;
  m_local.ada_count += update.ada_count;
  accumulate(std::move(update));
}

void Aggregator::add_skipped(const Update& update) {
  m_local.images += static_cast<double>(update.images);
}

AggregateResult Aggregator::finish(comm::Communicator& comm) { return reduce(comm, m_local); }

RoundTotals Aggregator::sum_totals(comm::Communicator& comm, const RoundTotals& local) {
  double slots[RoundTotals::kSlots];
  local.to(slots);
  comm.allreduce_sum(slots, RoundTotals::kSlots);
  RoundTotals out;
  out.from(slots);
  return out;
}

std::vector<std::string> aggregator_names() {
  return {"fedavg", "median", "trimmed-mean", "krum", "multi-krum", "norm-bound"};
}

std::string aggregator_settings_problem(const AggregatorConfig& config, int parties,
                                        double participation) {
  const int drawn = static_cast<int>(sample_participants(parties, participation, 0, 1).size());
  if (config.name == "trimmed-mean")
    return trimmed_mean_setup_problem(config.trim_beta, drawn, parties, participation);
  if (config.name != "krum" && config.name != "multi-krum") return "";
  const int f = config.krum_f;
  if (drawn <= 2 * f + 2)
    return "--aggregator " + config.name + " --krum-f " + std::to_string(f) + " needs more than " +
           "2f + 2 = " + std::to_string(2 * f + 2) + " parties in a round, but " +
           std::to_string(drawn) + " of the " + std::to_string(parties) +
           " parties take part (lower --krum-f, or raise --participation or the parties)";
  if (config.name == "multi-krum" && config.krum_m > drawn - f)
    return "--krum-m " + std::to_string(config.krum_m) + " is more than the " +
           std::to_string(drawn - f) + " updates Multi-Krum may average (" + std::to_string(drawn) +
           " parties in a round minus --krum-f " + std::to_string(f) + "); use at most " +
           std::to_string(drawn - f) + ", or 0 for that many";
  return "";
}

std::unique_ptr<Aggregator> make_aggregator(const AggregatorConfig& config,
                                            std::vector<std::int64_t> segment_sizes,
                                            const torch::Device& device,
                                            comm::Communicator& /*comm*/) {
  require(segment_sizes.size() == kSegments,
          "aggregator: expected " + std::to_string(kSegments) + " segment sizes");
  if (config.name == "fedavg")
    return std::make_unique<FedAvgAggregator>(std::move(segment_sizes), device);
  for (const auto& name : aggregator_names())
    if (name == config.name) {
      RobustConfig robust;
      robust.rule = parse_robust_rule(name);
      robust.trim_beta = config.trim_beta;
      robust.krum_f = config.krum_f;
      robust.krum_m = config.krum_m;
      return make_robust_aggregator(robust, std::move(segment_sizes), device);
    }
  std::string names;
  for (const auto& n : aggregator_names()) names += (names.empty() ? "" : ", ") + n;
  throw Error("--aggregator: unknown aggregator '" + config.name + "' (expected one of " +
              names + ")");
}

}  // namespace fedgan::federated
