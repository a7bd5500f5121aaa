// SecureFedAvgAggregator (see include/fedgan/privacy/secure_fedavg.hpp).
#include "fedgan/privacy/secure_fedavg.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "fedgan/core/error.hpp"
#include "fedgan/privacy/fixed_point.hpp"
#include "fedgan/privacy/secure_aggregation.hpp"

namespace fedgan::privacy {
namespace {

using federated::AggregateResult;
using federated::Aggregator;
using federated::RoundContext;
using federated::RoundTotals;
using federated::Update;

class SecureFedAvgAggregator final : public Aggregator {
 public:
  SecureFedAvgAggregator(const privacy::SecureAggConfig& config, std::vector<std::int64_t> sizes,
                         const torch::Device& device, comm::Communicator& comm)
      : Aggregator(std::move(sizes)), m_config(config), m_device(device) {
    privacy::SecAggOptions options;
    options.threshold_fraction = config.threshold;
    m_secagg = std::make_unique<privacy::SecAggProtocol>(
        comm, static_cast<std::size_t>(layout().numel()), options);
  }
  std::string name() const override {
    return federated::to_string(federated::AggregationRule::FedAvg);
  }
  std::string describe() const override {
    const auto& dp = m_config.dp;
    const std::string range =
        m_config.range > 0   ? fmt::format("±{}", m_config.range)
        : dp.share_noise > 0 ? fmt::format("±(C + {:g}·z·C/√m) from --dp-clip (C = {}, z = {})",
                                           privacy::kDpBoundSigmas, dp.clip, dp.share_noise)
                             : fmt::format("±C = {} from --dp-clip", dp.clip);
    return fmt::format(
        "secure aggregation (Bonawitz et al. 2017): masked uint64 allreduce of {:.1f} MB per "
        "round, update values clamped to {}, threshold t = max(2, floor({}·m)+1) of the "
        "round's m parties",
        static_cast<double>(layout().numel()) * 8 / 1e6, range, m_config.threshold);
  }

 protected:
  void on_begin_round(const RoundContext& round) override {
    require(round.party_samples != nullptr, "secure aggregation: the party table is missing");
    const auto& n = *round.party_samples;
    m_pending.clear();
    m_weight = 0;
    m_clamped = 0;
    // No party drawn this round (Poisson sampling under DP may draw none): nothing is masked,
    // the sum is zero (DP's transform still adds its noise). Every rank sees the same list.
    m_empty = round.participants.empty();
    if (m_empty) {
      m_codec.reset();
      return;
    }
    // Given, or from --dp-clip at this round's m (the m its noise shares were drawn for).
    m_range = privacy::round_range(m_config, round.participants.size());
    // The scale covers the largest sum this round's parties can form: range · Σ n_k.
    double weight_sum = 0, weight_max = 0;
    for (int k : round.participants) {
      weight_sum += static_cast<double>(n.at(static_cast<std::size_t>(k)));
      weight_max = std::max(weight_max, static_cast<double>(n.at(static_cast<std::size_t>(k))));
    }
    m_codec = std::make_unique<privacy::FixedPointCodec>(
        m_range * weight_max, m_range * weight_sum,
        static_cast<std::int64_t>(round.participants.size()));
    std::vector<privacy::SecAggParty> hosted;
    for (int k : round.hosted)
      hosted.push_back({k, static_cast<double>(n.at(static_cast<std::size_t>(k)))});
    m_pending.assign(round.hosted.begin(), round.hosted.end());
    m_secagg->begin_round(round.round, hosted);  // collective: keys and shares
  }

  Contribution accumulate(Update update) override {
    const int round = this->round().round;
    const auto& n = *this->round().party_samples;
    const double bound = static_cast<double>(n.at(static_cast<std::size_t>(update.party)));
    require(update.weight >= 0 && update.weight <= bound,
            "secure aggregation: party " + std::to_string(update.party) + "'s weight " +
                std::to_string(update.weight) + " exceeds its sample count " +
                std::to_string(bound) + ", which the fixed-point range assumes");
    auto flat = layout().flatten(update.segments);
    // Clamped, never wrapped: beyond ±B a value is set to ±B and counted (warned after the
    // round); the codec's scale leaves the clamped sum no room to wrap.
    const double B = m_range;
    m_clamped += (flat.abs() > B).sum().item<std::int64_t>();
    flat.clamp_(-B, B);
    std::vector<std::uint64_t> encoded(static_cast<std::size_t>(flat.numel()));
    m_codec->encode(flat.data_ptr<float>(), encoded.size(), update.weight, encoded.data());
    const bool fails = std::any_of(m_config.drops.begin(), m_config.drops.end(), [&](auto& d) {
      return d.party == update.party && d.round == round;
    });
    m_secagg->add(update.party, encoded, fails);
    m_pending.erase(std::remove(m_pending.begin(), m_pending.end(), update.party), m_pending.end());
    // A party failing after masking: its input never arrives, so it does not contribute.
    if (fails) return Contribution::Lost;
    m_weight += update.weight;
    return Contribution::Aggregated;
  }

  AggregateResult reduce(comm::Communicator& comm, const RoundTotals& local) override {
    if (m_empty) {
      AggregateResult out;
      double weight = 0, clamped = 0;
      out.totals = sum_totals(comm, local, {&weight, &clamped});
      out.sums = layout().split(torch::zeros(
          {layout().numel()}, torch::TensorOptions().dtype(torch::kFloat64).device(m_device)));
      return out;
    }
    // Parties of this rank that sent nothing (skipped for a non-finite update) are dropouts:
    // the others' masks with them are removed through their shares.
    for (int k : m_pending) m_secagg->drop(k);
    m_pending.clear();
    const auto result = m_secagg->finish();
    // Totals, the weight and the clamped count in clear: they are public (docs/DESIGN.md,
    // "Secure aggregation"). An abandoned round aggregated no party: only the training counts.
    double weight = m_weight, clamped = static_cast<double>(m_clamped);
    AggregateResult out;
    out.totals =
        sum_totals(comm, result.abandoned ? local.training_only() : local, {&weight, &clamped});
    log_round(comm, result, clamped);
    const auto options = torch::TensorOptions().dtype(torch::kFloat64).device(m_device);
    if (result.abandoned) {
      // Nothing is aggregated: the server step is skipped and the model stays as it was.
      out.abandoned = result.message;
      out.sums = layout().split(torch::zeros({layout().numel()}, options));
      return out;
    }
    auto sum = torch::empty({layout().numel()}, torch::kFloat64);
    m_codec->decode(result.sum.data(), static_cast<std::size_t>(sum.numel()),
                    sum.data_ptr<double>());
    out.sums = layout().split(sum.to(options));
    out.total_weight = weight;
    out.denominator = out.total_weight;
    return out;
  }

 private:
  // Rank 0's lines on the round: values clamped, parties dropped and recovered, or abandoned.
  void log_round(comm::Communicator& comm, const privacy::SecAggResult& result,
                 double clamped) const {
    if (!comm.is_root()) return;
    const int round = this->round().round;
    if (clamped > 0)
      spdlog::warn(
          "secure aggregation: {:.0f} update values beyond the range {} were clamped in "
          "round {} (a larger --secagg-range keeps them, at a coarser scale)",
          clamped, m_range, round);
    if (!result.dropped.empty() && !result.abandoned)
      spdlog::info(
          "secure aggregation: round {}: {} of {} parties dropped after the key "
          "exchange; their masks were rebuilt from {}-of-{} Shamir shares",
          round, result.dropped.size(), result.dropped.size() + result.survivors.size(),
          result.threshold, result.dropped.size() + result.survivors.size());
    if (result.abandoned) spdlog::warn("secure aggregation: {}", result.message);
  }

  privacy::SecureAggConfig m_config;
  torch::Device m_device;
  std::unique_ptr<privacy::SecAggProtocol> m_secagg;
  std::unique_ptr<privacy::FixedPointCodec> m_codec;
  std::vector<int> m_pending;
  double m_weight = 0;  // Σ weight of this rank's updates that reach the sum
  std::int64_t m_clamped = 0;
  double m_range = 0;  // this round's ±bound on a party's values
  bool m_empty = false;  // no party drawn this round
};

}  // namespace

std::unique_ptr<federated::Aggregator> make_secure_fedavg_aggregator(
    const SecureAggConfig& config, const federated::AggregatorConfig& rule,
    std::vector<std::int64_t> segment_sizes, const torch::Device& device,
    comm::Communicator& comm) {
  require(segment_sizes.size() == federated::kSegments,
          "aggregator: expected " + std::to_string(federated::kSegments) + " segment sizes");
  // Masked updates can only be summed: a rule that inspects each update cannot run on them.
  require(rule.rule == federated::AggregationRule::FedAvg,
          "--secure-agg: --aggregator " + federated::to_string(rule.rule) +
              " needs every party's update in the clear, which secure aggregation hides (only "
              "the sum is revealed); use --aggregator fedavg with --secure-agg");
  return std::make_unique<SecureFedAvgAggregator>(config, std::move(segment_sizes), device, comm);
}

}  // namespace fedgan::privacy
