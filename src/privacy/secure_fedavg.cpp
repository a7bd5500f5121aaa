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
      : m_config(config), m_sizes(std::move(sizes)), m_device(device) {
    for (auto n : m_sizes) m_numel += n;
    privacy::SecAggOptions options;
    options.threshold_fraction = config.threshold;
    m_secagg = std::make_unique<privacy::SecAggProtocol>(comm, static_cast<std::size_t>(m_numel),
                                                           options);
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
        static_cast<double>(m_numel) * 8 / 1e6, range, m_config.threshold);
  }

 protected:
  void on_begin_round(const RoundContext& round) override {
    require(round.party_samples != nullptr, "secure aggregation: the party table is missing");
    const auto& n = *round.party_samples;
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
    m_failed = RoundTotals{};
    m_weight = 0;
    m_clamped = 0;
    m_secagg->begin_round(round.round, hosted);  // collective: keys and shares
  }

  void accumulate(Update update) override {
    const int round = this->round().round;
    const auto& n = *this->round().party_samples;
    const double bound = static_cast<double>(n.at(static_cast<std::size_t>(update.party)));
    require(update.weight >= 0 && update.weight <= bound,
            "secure aggregation: party " + std::to_string(update.party) + "'s weight " +
                std::to_string(update.weight) + " exceeds its sample count " +
                std::to_string(bound) + ", which the fixed-point range assumes");
    std::vector<torch::Tensor> parts;
    for (auto& s : update.segments) parts.push_back(s.to(torch::kCPU, torch::kFloat32).flatten());
    auto flat = torch::cat(parts).contiguous();
    require(flat.numel() == m_numel, "secure aggregation: an update has the wrong size");
    // Clamped, never wrapped: beyond ±B a value is set to ±B and counted (warned after the
    // round); the codec's scale leaves the clamped sum no room to wrap.
    const double B = m_range;
    m_clamped += (flat.abs() > B).sum().item<std::int64_t>();
    flat.clamp_(-B, B);
    std::vector<std::uint64_t> encoded(static_cast<std::size_t>(m_numel));
    m_codec->encode(flat.data_ptr<float>(), encoded.size(), update.weight, encoded.data());
    const bool fails = std::any_of(m_config.drops.begin(), m_config.drops.end(), [&](auto& d) {
      return d.party == update.party && d.round == round;
    });
    m_secagg->add(update.party, encoded, fails);
    m_pending.erase(std::remove(m_pending.begin(), m_pending.end(), update.party), m_pending.end());
    if (fails) {
      // Its input never arrives: it does not count as a contributing party.
      m_failed.d_loss += update.d_loss;
      m_failed.g_loss += update.g_loss;
      m_failed.parties += 1;
      m_failed.samples += static_cast<double>(update.samples);
      m_failed.sample_steps +=
          static_cast<double>(update.samples) * static_cast<double>(update.steps);
    } else {
      m_weight += update.weight;
    }
  }

  AggregateResult reduce(comm::Communicator& comm, const RoundTotals& local) override {
    // Parties of this rank that sent nothing (skipped for a non-finite update) are dropouts:
    // the others' masks with them are removed through their shares.
    for (int k : m_pending) m_secagg->drop(k);
    m_pending.clear();
    const auto result = m_secagg->finish();
    // Totals, the weight and the clamped count in clear: they are public (docs/DESIGN.md, "Secure aggregation").
    RoundTotals mine = local;
    mine.d_loss -= m_failed.d_loss;
    mine.g_loss -= m_failed.g_loss;
    mine.parties -= m_failed.parties;
    mine.samples -= m_failed.samples;
    mine.sample_steps -= m_failed.sample_steps;
    double slots[RoundTotals::kSlots + 2];
    mine.to(slots);
    slots[RoundTotals::kSlots] = m_weight;
    slots[RoundTotals::kSlots + 1] = static_cast<double>(m_clamped);
    comm.allreduce_sum(slots, RoundTotals::kSlots + 2);
    AggregateResult out;
    out.totals.from(slots);
    const int round = this->round().round;
    if (slots[RoundTotals::kSlots + 1] > 0 && comm.is_root())
      spdlog::warn(
          "secure aggregation: {:.0f} update values beyond the range {} were clamped in "
          "round {} (a larger --secagg-range keeps them, at a coarser scale)",
          slots[RoundTotals::kSlots + 1], m_range, round);
    if (!result.dropped.empty() && !result.abandoned && comm.is_root())
      spdlog::info(
          "secure aggregation: round {}: {} of {} parties dropped after the key "
          "exchange; their masks were rebuilt from {}-of-{} Shamir shares",
          round, result.dropped.size(), result.dropped.size() + result.survivors.size(),
          result.threshold, result.dropped.size() + result.survivors.size());
    if (result.abandoned) {
      if (comm.is_root()) spdlog::warn("secure aggregation: {}", result.message);
      // Nothing is aggregated: the server step is skipped and the model stays as it was.
      out.abandoned = result.message;
      out.totals.parties = 0;
      out.totals.d_loss = out.totals.g_loss = out.totals.samples = out.totals.sample_steps = 0;
      for (auto n : m_sizes)
        out.sums.push_back(torch::zeros({n}, torch::dtype(torch::kFloat64).device(m_device)));
      return out;
    }
    std::vector<double> decoded(static_cast<std::size_t>(m_numel));
    m_codec->decode(result.sum.data(), decoded.size(), decoded.data());
    auto all = torch::from_blob(decoded.data(), {m_numel}, torch::kFloat64);
    std::int64_t at = 0;
    for (auto n : m_sizes) {
      out.sums.push_back(all.narrow(0, at, n).to(m_device, /*non_blocking=*/false, /*copy=*/true));
      at += n;
    }
    out.total_weight = slots[RoundTotals::kSlots];
    out.denominator = out.total_weight;
    return out;
  }

 private:
  privacy::SecureAggConfig m_config;
  std::vector<std::int64_t> m_sizes;
  torch::Device m_device;
  std::int64_t m_numel = 0;
  std::unique_ptr<privacy::SecAggProtocol> m_secagg;
  std::unique_ptr<privacy::FixedPointCodec> m_codec;
  std::vector<int> m_pending;
  RoundTotals m_failed;
  double m_weight = 0;
  std::int64_t m_clamped = 0;
  double m_range = 0;  // this round's ±bound on a party's values
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
