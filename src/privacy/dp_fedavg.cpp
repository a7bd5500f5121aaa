// Client-level DP-FedAvg on the round's seams (see dp_fedavg.hpp).
#include "fedgan/privacy/dp_fedavg.hpp"

#include <cmath>

#include "fedgan/core/error.hpp"
#include "fedgan/data/random.hpp"
#include "fedgan/io/checkpoint_keys.hpp"
#include "fedgan/privacy/clipping.hpp"

namespace fedgan::privacy {
namespace {

// Stream tags (ASCII) of the DP draws, apart from every other seeded stream of the run.
constexpr std::uint64_t kPartyNoise = 0x64706e70;    // "dpnp": a party's distributed noise
constexpr std::uint64_t kCentralNoise = 0x64706e63;  // "dpnc": the central noise
constexpr std::uint64_t kCountNoise = 0x64706363;    // "dpcc": the clipped count's noise

// The count's noisy shares are rounded to multiples of 2⁻²⁰ so that their float64 sum is
// exact in any order: every rank's allreduce then gives the same C_{t+1} (a sum of arbitrary
// doubles may round differently on different ranks).
double on_count_grid(double x) { return std::ldexp(std::nearbyint(std::ldexp(x, 20)), -20); }

double one_normal(std::uint64_t seed) { return gaussian_noise(1, seed).item<double>(); }

}  // namespace

class DpFedAvg::ClipAndNoise : public federated::UpdateTransform {
 public:
  explicit ClipAndNoise(DpFedAvg& dp) : m_dp(dp) {}
  std::string name() const override { return "dp-clip"; }

  void apply(federated::Update& update, const federated::RoundContext& round) override {
    const auto& plan = m_dp.m_plan;
    const double clip = m_dp.m_clip;
    if (m_dp.m_count_round != round.round) {
      m_dp.m_count_round = round.round;
      m_dp.m_local_count = 0;
    }
    // The whole update, G and D, trainable parameters and BatchNorm statistics alike: all of
    // it leaves the party, so all of it is inside the clip.
    const double norm = clip_l2(update.segments, clip);
    const double w = plan.weights.at(static_cast<std::size_t>(update.party));
    if (w != 1.0) {
      torch::NoGradGuard no_grad;
      for (auto& s : update.segments) s.mul_(w);
    }
    update.weight = 1.0;
    const double sharers = static_cast<double>(round.participants.size());
    const bool distributed = plan.config.noise == NoiseMode::Distributed;
    const auto party_seed = data::derive_seed(
        data::derive_seed(round.seed, kPartyNoise, static_cast<std::uint64_t>(round.round)),
        static_cast<std::uint64_t>(update.party));
    if (distributed && plan.update_noise_multiplier > 0) {
      // Σ over the |S_t| participants of N(0, σ²/|S_t|) is N(0, σ²): the central noise.
      const double sd = plan.update_noise_multiplier * clip / std::sqrt(sharers);
      for (std::size_t i = 0; i < update.segments.size(); ++i)
        add_gaussian_noise(update.segments[i], sd, data::derive_seed(party_seed, i));
    }
    if (plan.config.adaptive()) {
      double b = norm <= clip ? 0.5 : -0.5;
      if (distributed && plan.count_stddev > 0)
        b += plan.count_stddev / std::sqrt(sharers) * one_normal(data::derive_seed(party_seed, 99));
      m_dp.m_local_count += on_count_grid(b);
    }
  }

 private:
  DpFedAvg& m_dp;
};

class DpFedAvg::NoiseAndAccount : public federated::AggregateTransform {
 public:
  explicit NoiseAndAccount(DpFedAvg& dp) : m_dp(dp) {}
  std::string name() const override { return "dp-noise"; }

  void apply(federated::AggregateResult& aggregate,
             const federated::RoundContext& round) override {
    const auto& plan = m_dp.m_plan;
    const double clip = m_dp.m_clip;
    const auto round_seed = data::derive_seed(round.seed, kCentralNoise,
                                              static_cast<std::uint64_t>(round.round));
    if (plan.config.noise == NoiseMode::Central && plan.update_noise_multiplier > 0) {
      for (std::size_t i = 0; i < aggregate.sums.size(); ++i)
        add_gaussian_noise(aggregate.sums[i], plan.update_noise_multiplier * clip,
                           data::derive_seed(round_seed, i));
    }
    // The fixed denominator: who took part must not change the scale of the release.
    aggregate.denominator = plan.denominator;
    aggregate.apply_when_empty = true;
    if (plan.config.adaptive()) {
      double count = m_dp.m_count_round == round.round ? m_dp.m_local_count : 0.0;
      m_dp.m_comm.allreduce_sum(&count, 1);
      if (plan.config.noise == NoiseMode::Central && plan.count_stddev > 0)
        count += plan.count_stddev *
                 one_normal(data::derive_seed(round.seed, kCountNoise,
                                              static_cast<std::uint64_t>(round.round)));
      m_dp.m_clip = next_adaptive_clip(clip, count, plan);
    }
    m_dp.m_local_count = 0;
    m_dp.m_accountant.compose(plan.q, plan.config.noise_multiplier);
    ++m_dp.m_rounds;
  }

 private:
  DpFedAvg& m_dp;
};

DpFedAvg::DpFedAvg(comm::Communicator& comm, DpPlan plan)
    : m_comm(comm), m_plan(std::move(plan)), m_clip(m_plan.config.clip) {}

std::unique_ptr<federated::UpdateTransform> DpFedAvg::update_transform() {
  return std::make_unique<ClipAndNoise>(*this);
}

std::unique_ptr<federated::AggregateTransform> DpFedAvg::aggregate_transform() {
  return std::make_unique<NoiseAndAccount>(*this);
}

PrivacySpent DpFedAvg::spent(Conversion conversion) const {
  return m_accountant.spent(m_plan.delta, conversion);
}

PrivacySpent DpFedAvg::spent_after(int rounds, Conversion conversion) const {
  if (rounds <= 0) return spent(conversion);
  return m_accountant.spent_after(m_plan.q, m_plan.config.noise_multiplier, rounds, m_plan.delta,
                                  conversion);
}

bool DpFedAvg::next_round_exceeds_budget() const {
  return m_plan.config.epsilon_budget > 0 &&
         spent_after(1).epsilon > m_plan.config.epsilon_budget;
}

std::string DpFedAvg::guarantee(int rounds) const {
  const auto best = spent_after(rounds - m_rounds);
  const auto classic = spent_after(rounds - m_rounds, Conversion::Classic);
  return guarantee_line(m_plan, rounds, best.epsilon, best.order, classic.epsilon, m_clip);
}

std::map<std::string, torch::Tensor> DpFedAvg::state() const {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto& orders = m_accountant.orders();
  const auto& rdp = m_accountant.rdp();
  const auto n = static_cast<std::int64_t>(orders.size());
  return {
      {io::keys::kPrivacyOrders, torch::from_blob(const_cast<double*>(orders.data()), {n}, f64).clone()},
      {io::keys::kPrivacyRdp, torch::from_blob(const_cast<double*>(rdp.data()), {n}, f64).clone()},
      {io::keys::kPrivacyClip, torch::full({1}, m_clip, f64)},
      {io::keys::kPrivacyRounds, torch::full({1}, static_cast<std::int64_t>(m_rounds), torch::kInt64)},
  };
}

void DpFedAvg::load_state(const std::map<std::string, torch::Tensor>& state) {
  const auto get = [&](const std::string& key) {
    const auto it = state.find(key);
    if (it == state.end())
      throw Error("checkpoint: no /state/" + key +
                  " (the run was started without DP; resume it without --dp-clip)");
    return it->second.to(torch::kCPU).contiguous();
  };
  const auto to_vector = [](const torch::Tensor& t) {
    const auto d = t.to(torch::kFloat64).contiguous();
    return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
  };
  const auto orders = to_vector(get(io::keys::kPrivacyOrders));
  const auto rdp = to_vector(get(io::keys::kPrivacyRdp));
  m_accountant.restore(orders, rdp);
  const auto clip = get(io::keys::kPrivacyClip);
  const auto rounds = get(io::keys::kPrivacyRounds);
  require(clip.numel() == 1 && rounds.numel() == 1,
          "checkpoint: /state/privacy/clip and /state/privacy/rounds must hold one value each");
  const double c = clip.to(torch::kFloat64).item<double>();
  require(c > 0 && !std::isnan(c), "checkpoint: /state/privacy/clip must be > 0");
  m_clip = c;
  m_rounds = static_cast<int>(rounds.to(torch::kInt64).item<std::int64_t>());
}

}  // namespace fedgan::privacy
