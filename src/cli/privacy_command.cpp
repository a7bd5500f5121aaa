// `fedgan privacy`: the (ε, δ) of client-level DP-FedAvg from q, z and the rounds (RDP of the
// sampled Gaussian mechanism), or the noise multiplier that reaches a target ε (bisection).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <iostream>
#include <memory>

#include "fedgan/cli/command.hpp"
#include "fedgan/cli/validators.hpp"
#include "fedgan/comm/collective.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/privacy/rdp_accountant.hpp"

namespace fedgan::cli {
namespace {

struct PrivacyConfig {
  double q = 0;
  double noise_multiplier = -1;
  int rounds = 0;
  double delta = 0;
  double target_epsilon = 0;
  bool json = false;
};

std::string number(double v) {
  return std::isfinite(v) ? fmt::format("{:.17g}", v) : std::string("null");
}

int run_privacy(comm::Communicator& comm, const PrivacyConfig& c) {
  const auto orders = privacy::default_orders();
  double z = c.noise_multiplier;
  // Every rank computes the same figures (no collective needed); an error here is reached
  // identically on every rank, hence collective.
  try {
    if (c.target_epsilon > 0)
      z = privacy::noise_for_epsilon(c.q, c.rounds, c.delta, c.target_epsilon, orders);
  } catch (const Error& e) {
    throw Error(std::string("--target-epsilon: ") + e.what(), true);
  }
  const auto rdp = privacy::compute_rdp(c.q, z, c.rounds, orders);
  const auto best = privacy::epsilon_from_rdp(orders, rdp, c.delta);
  const auto classic = privacy::epsilon_from_rdp(orders, rdp, c.delta, privacy::Conversion::Classic);
  if (!comm.is_root()) return 0;
  if (c.json) {
    std::cout << fmt::format(
                     "{{\"q\": {}, \"noise_multiplier\": {}, \"rounds\": {}, \"delta\": {}, "
                     "\"target_epsilon\": {}, \"epsilon\": {}, \"order\": {}, "
                     "\"epsilon_classic\": {}, \"order_classic\": {}, \"conversion\": "
                     "\"Balle et al. 2020 (classic: Mironov 2017)\"}}",
                     number(c.q), number(z), c.rounds, number(c.delta),
                     c.target_epsilon > 0 ? number(c.target_epsilon) : std::string("null"),
                     number(best.epsilon), number(best.order), number(classic.epsilon),
                     number(classic.order))
              << std::endl;
    return 0;
  }
  if (c.target_epsilon > 0)
    std::cout << fmt::format("noise multiplier {:.6g} reaches epsilon <= {:g} (bisection, "
                             "relative precision 1e-6, rounded up)\n",
                             z, c.target_epsilon);
  std::cout << fmt::format(
                   "({:.6g}, {:g})-DP at the party level for {} rounds, q = {:g}, noise "
                   "multiplier {:.6g}: epsilon {:.6g} at order {:g} (Balle et al. 2020); "
                   "classic bound {:.6g} at order {:g}\n",
                   best.epsilon, c.delta, c.rounds, c.q, z, best.epsilon, best.order,
                   classic.epsilon, classic.order)
            << std::flush;
  return 0;
}

}  // namespace

void add_privacy_command(CLI::App& root, Commands& commands) {
  auto c = std::make_shared<PrivacyConfig>();
  auto* sub = root.add_subcommand(
      "privacy", "epsilon of client-level DP-FedAvg (RDP accountant), or the noise multiplier "
                 "for a target epsilon");
  sub->add_option("--q", c->q, "party sampling rate per round (train's --participation)")
      ->required()
      ->check(in_range(0, 1, End::Open, End::Closed));
  auto* z = sub->add_option("--noise-multiplier", c->noise_multiplier,
                            "noise stddev / clip norm (train's --dp-noise-multiplier)")
                ->check(non_negative());
  sub->add_option("--rounds", c->rounds, "rounds (each a sampled Gaussian mechanism)")
      ->required()
      ->check(in_range(1, 1e9));
  sub->add_option("--delta", c->delta, "delta, below 1/parties (train's default: 1/(10 parties))")
      ->required()
      ->check(in_range(0, 1, End::Open, End::Open));
  auto* target = sub->add_option("--target-epsilon", c->target_epsilon,
                                 "instead of --noise-multiplier: find the smallest noise "
                                 "multiplier whose epsilon is at most this")
                     ->check(positive());
  z->excludes(target);
  sub->add_flag("--json", c->json, "print one JSON object");
  // One of the two is needed; CLI11 has no "exactly one of" for options, so say it here.
  sub->callback([z, target] {
    if (z->count() == 0 && target->count() == 0)
      throw CLI::ValidationError("privacy",
                                 "give --noise-multiplier z (to get epsilon) or --target-epsilon "
                                 "E (to get z)");
  });
  commands.push_back({sub, [c](comm::Communicator& comm) { return run_privacy(comm, *c); }});
}

}  // namespace fedgan::cli
