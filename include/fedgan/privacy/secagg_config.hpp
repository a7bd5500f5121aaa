// SecureAggConfig: the settings of `--secure-agg` (filled by the CLI, checked before round 1).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "fedgan/privacy/dp_config.hpp"

namespace fedgan::privacy {

// A simulated failure: party `party` fails after masking in round `round` (--secagg-drop P@R).
struct SecAggDrop {
  int party = 0;
  int round = 0;
};

// What client-level DP says about the values a party sends (set at the CLI edge from the DP
// options): each is a coordinate of its update clipped to L2 norm C, so |x| ≤ C, plus with
// --dp-noise distributed its share N(0, z²C²/m) of the round's noise (m: the round's parties).
struct SecAggDpBound {
  bool enabled = false;    // --dp-clip given
  double clip = 0;         // C (the initial C with adaptive clipping)
  double share_noise = 0;  // z with --dp-noise distributed; 0 with central noise
  bool adaptive = false;   // --dp-clip-quantile > 0: C changes every round
};

struct SecureAggConfig {
  bool enabled = false;  // --secure-agg
  // --secagg-range B: bound on each value of one party's update Δ (before weighting); values
  // beyond are clamped (counted in the log). Sets the fixed-point scale: 0 = not given, then
  // it follows from dp (dp_value_bound), and without DP it is required.
  double range = 0;
  SecAggDpBound dp;
  double threshold = 0.5;         // --secagg-threshold f: t = min(m, max(2, ⌊f·m⌋ + 1))
  std::vector<SecAggDrop> drops;  // --secagg-drop
};

// Noise values beyond kDpBoundSigmas standard deviations are treated as impossible:
// P(|N(0, σ²)| > 10σ) = erfc(10/√2) ≈ 1.5e-23 per value.
inline constexpr double kDpBoundSigmas = 10;

// The bound on each value a DP party sends in a round of m parties: C with central noise,
// B = C + 10·z·C/√m with distributed noise (each share is N(0, z²C²/m)). A coordinate can
// exceed it only through its noise share beyond 10σ: probability ≤ 1.5e-23 per value.
double dp_value_bound(const SecAggDpBound& dp, double participants);

// The range of a round of `participants` parties: --secagg-range when given, else the DP
// bound at the round's own m (the m its distributed noise shares were drawn for).
double round_range(const SecureAggConfig& config, std::size_t participants);

// The SecAggDpBound that DP settings imply (enabled = false without DP).
SecAggDpBound secagg_dp_bound(const DpConfig& dp);

// "3@2" → {party 3, round 2}; fedgan::Error "--secagg-drop: ..." naming what is wrong.
SecAggDrop parse_secagg_drop(const std::string& text);

// Checks the settings against the run: a range when enabled (given, or from non-adaptive DP;
// a given one not below the DP bound at m), dropped parties and rounds in
// range, at least 2 participants per round (m = ⌈participation·P⌉). Throws fedgan::Error
// naming the option; every rank evaluates it alike.
void check_secure_agg(const SecureAggConfig& config, int total_parties, double participation,
                      int rounds);

}  // namespace fedgan::privacy
