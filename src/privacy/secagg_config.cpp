// --secure-agg settings: parsing and the checks against the run (see secagg_config.hpp).
#include "fedgan/privacy/secagg_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "fedgan/core/error.hpp"

namespace fedgan::privacy {
namespace {

bool parse_nonneg_int(const std::string& s, int& out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  out = std::atoi(s.c_str());
  return true;
}

}  // namespace

SecAggDrop parse_secagg_drop(const std::string& text) {
  const auto at = text.find('@');
  SecAggDrop d;
  if (at == std::string::npos || !parse_nonneg_int(text.substr(0, at), d.party) ||
      !parse_nonneg_int(text.substr(at + 1), d.round) || d.round < 1)
    throw Error("--secagg-drop: '" + text +
                "' is not PARTY@ROUND (a party id >= 0 and a round >= 1, e.g. 3@2)");
  return d;
}

double dp_value_bound(const SecAggDpBound& dp, double participants) {
  const double m = std::max(1.0, participants);
  return dp.clip + kDpBoundSigmas * dp.share_noise * dp.clip / std::sqrt(m);
}

double round_range(const SecureAggConfig& c, std::size_t participants) {
  if (c.range > 0 || !c.dp.enabled) return c.range;
  return dp_value_bound(c.dp, static_cast<double>(participants));
}

SecAggDpBound secagg_dp_bound(const DpConfig& dp) {
  SecAggDpBound b;
  if (!dp.enabled) return b;
  b.enabled = true;
  b.clip = dp.clip;
  b.share_noise = dp.noise == NoiseMode::Distributed ? dp.noise_multiplier : 0.0;
  b.adaptive = dp.adaptive();
  return b;
}

void check_secure_agg(const SecureAggConfig& c, int total_parties, double participation,
                      int rounds) {
  if (!c.enabled) {
    require(c.drops.empty(), "--secagg-drop: needs --secure-agg");
    return;
  }
  require(std::isfinite(c.range) && c.range >= 0,
          "--secagg-range: must be a finite number >= 0 (got " + std::to_string(c.range) + ")");
  require(c.range > 0 || c.dp.enabled,
          "--secure-agg: needs --secagg-range B > 0, the bound on each value of a party's "
          "update (it sets the fixed-point scale so that the masked sum cannot wrap); with "
          "--dp-clip C it follows from the clip");
  // Adaptive clipping moves C by a noised count each round: no bound holds for the whole run.
  require(c.range > 0 || !c.dp.adaptive,
          fmt::format("--secure-agg with adaptive clipping (--dp-clip-quantile): the clip C "
                      "changes every round without a fixed bound, so give --secagg-range B for "
                      "the largest clip you expect (B >= C + {:g}*z*C/sqrt(m) with distributed "
                      "noise)",
                      kDpBoundSigmas));
  require(c.threshold > 0 && c.threshold <= 1,
          "--secagg-threshold: must be in (0, 1] (got " + std::to_string(c.threshold) + ")");
  const auto m = static_cast<int>(std::ceil(participation * total_parties - 1e-9));
  if (c.range > 0 && c.dp.enabled) {
    // At the expected m; with adaptive clipping at the initial C and z (its update noise is a
    // little larger), so a range below this is too small from round 1.
    const double bound = dp_value_bound(c.dp, static_cast<double>(std::max(m, 1)));
    require(c.range >= bound,
            fmt::format("--secagg-range {} is below the bound that --dp-clip {} implies, {:.6g} "
                        "({}): clipped{} updates would be clamped; raise --secagg-range or leave "
                        "it out (0) to take the bound",
                        c.range, c.dp.clip, bound,
                        c.dp.share_noise > 0
                            ? fmt::format("C + {:g}*z*C/sqrt(m) with z = {} and m = {} "
                                          "parties a round",
                                          kDpBoundSigmas, c.dp.share_noise, m)
                            : std::string("C, central noise"),
                        c.dp.share_noise > 0 ? ", noised" : ""));
  }
  require(m >= 2,
          "--secure-agg: needs at least 2 parties per round to hide an update among "
          "(--participation " +
              std::to_string(participation) + " of " + std::to_string(total_parties) +
              " parties draws " + std::to_string(m) + ")");
  for (const auto& d : c.drops) {
    require(d.party < total_parties, "--secagg-drop: party " + std::to_string(d.party) +
                                         " does not exist (the run has parties 0.." +
                                         std::to_string(total_parties - 1) + ")");
    require(d.round <= rounds, "--secagg-drop: round " + std::to_string(d.round) +
                                   " is beyond --rounds " + std::to_string(rounds));
  }
}

}  // namespace fedgan::privacy
