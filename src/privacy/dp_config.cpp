// DP-FedAvg settings, Poisson sampling and adaptive clipping (see dp_config.hpp).
#include "fedgan/privacy/dp_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "fedgan/core/error.hpp"

namespace fedgan::privacy {
namespace {

std::string g(double v) { return fmt::format("{:g}", v); }

}  // namespace

const ChoiceTable<Choice<NoiseMode>>& noise_modes() {
  static const Choice<NoiseMode> entries[] = {
      {NoiseMode::Central, "central", "one draw added to the sum; a trusted aggregator"},
      {NoiseMode::Distributed, "distributed",
       "each participant adds its share N(0, z^2 C^2/|S|); pairs with secure aggregation"},
  };
  static const ChoiceTable<Choice<NoiseMode>> table(entries, "--dp-noise", "noise placement");
  return table;
}

const ChoiceTable<Choice<DpWeighting>>& dp_weightings() {
  static const Choice<DpWeighting> entries[] = {
      {DpWeighting::Uniform, "uniform", "each clipped update counts 1, divided by q*P"},
      {DpWeighting::FixedN, "fixed-n",
       "weight n_k/max n, divided by q*sum(n_k/max n), never by the round's own sum of n_k"},
  };
  static const ChoiceTable<Choice<DpWeighting>> table(entries, "--dp-weighting", "weighting");
  return table;
}

std::string to_string(NoiseMode mode) { return noise_modes().name(mode); }
std::string to_string(DpWeighting weighting) { return dp_weightings().name(weighting); }

DpPlan make_dp_plan(const DpConfig& c, double participation,
                    const std::vector<std::int64_t>& shard_sizes) {
  DpPlan plan;
  plan.config = c;
  plan.parties = static_cast<int>(shard_sizes.size());
  plan.q = participation;
  const int P = plan.parties;
  require(P >= 1, "DP: no parties");
  require(participation > 0 && participation <= 1,
          "--participation " + g(participation) + ": the Poisson sampling rate must be in (0, 1]");
  require(c.clip > 0 && !std::isnan(c.clip), "--dp-clip " + g(c.clip) + ": expected a number > 0");
  require(c.noise_multiplier >= 0 && std::isfinite(c.noise_multiplier),
          "--dp-noise-multiplier " + g(c.noise_multiplier) + ": expected a finite number >= 0");
  require(c.epsilon_budget >= 0, "--epsilon-budget: expected a number >= 0 (0: no budget)");
  // δ must be well below the chance of singling out one party: δ ≥ 1/P would allow a
  // mechanism that publishes one party's data outright.
  plan.delta = c.delta > 0 ? c.delta : 1.0 / (10.0 * P);
  require(plan.delta < 1.0 / P,
          "--dp-delta " + g(plan.delta) + ": must be below 1/parties = " + g(1.0 / P) + " (" +
              std::to_string(P) + " parties; default 1/(10 parties) = " + g(0.1 / P) + ")");
  plan.expected_participants = participation * P;

  plan.weights.assign(P, 1.0);
  if (c.weighting == DpWeighting::FixedN) {
    const auto max_n = *std::max_element(shard_sizes.begin(), shard_sizes.end());
    require(max_n > 0, "DP: every party's shard is empty");
    for (int k = 0; k < P; ++k)
      plan.weights[k] = static_cast<double>(shard_sizes[k]) / static_cast<double>(max_n);
  }
  plan.denominator = participation * std::accumulate(plan.weights.begin(), plan.weights.end(), 0.0);

  plan.update_noise_multiplier = c.noise_multiplier;
  if (c.adaptive()) {
    require(c.clip_quantile > 0 && c.clip_quantile < 1,
            "--dp-clip-quantile " + g(c.clip_quantile) + ": expected a fraction in (0, 1)");
    require(c.clip_lr > 0 && std::isfinite(c.clip_lr),
            "--dp-clip-lr " + g(c.clip_lr) + ": expected a number > 0");
    require(std::isfinite(c.clip), "--dp-clip: adaptive clipping needs a finite initial clip");
    require(c.clip_count_stddev >= 0, "--dp-clip-count-stddev: expected a number >= 0");
    if (c.noise_multiplier > 0) {
      plan.count_stddev =
          c.clip_count_stddev > 0 ? c.clip_count_stddev : plan.expected_participants / 20.0;
      // Andrew et al. 2021, Thm. 1: updates with z_Δ and the count with σ_b together are one
      // Gaussian mechanism of multiplier z = (z_Δ⁻² + (2σ_b)⁻²)^(-1/2); the accountant
      // charges z, so the updates get the z_Δ that solves it, which needs 2σ_b > z.
      const double two_sb = 2 * plan.count_stddev;
      require(two_sb > c.noise_multiplier,
              "--dp-clip-quantile: the clipped-count noise sigma_b = " + g(plan.count_stddev) +
                  (c.clip_count_stddev > 0 ? "" : " (expected participants / 20)") +
                  " must exceed z/2 = " + g(c.noise_multiplier / 2) +
                  "; raise --dp-clip-count-stddev (or sample more parties per round)");
      plan.update_noise_multiplier =
          1.0 / std::sqrt(1.0 / (c.noise_multiplier * c.noise_multiplier) -
                          1.0 / (two_sb * two_sb));
    } else {
      plan.count_stddev = c.clip_count_stddev;
    }
  }
  return plan;
}

double next_adaptive_clip(double clip, double noised_centred_count, const DpPlan& plan) {
  const double m = plan.expected_participants;
  const double fraction = noised_centred_count / m + 0.5;
  return clip * std::exp(-plan.config.clip_lr * (fraction - plan.config.clip_quantile));
}

std::string guarantee_line(const DpPlan& plan, int rounds, double epsilon, double order,
                           double classic_epsilon, double clip) {
  const auto& c = plan.config;
  std::string line = fmt::format(
      "({:.4g}, {:.3g})-DP at the party level for {} rounds, q = {:g}, z = {:g}, C = {:.6g}{}",
      epsilon, plan.delta, rounds, plan.q, c.noise_multiplier, clip,
      c.adaptive() ? " (adaptive)" : "");
  line += fmt::format(" [RDP order {:g}, Balle et al. 2020; classic bound {:.4g}; {} noise, {} "
                      "weighting, {} parties]",
                      order, classic_epsilon, to_string(c.noise), to_string(c.weighting),
                      plan.parties);
  return line;
}

}  // namespace fedgan::privacy
