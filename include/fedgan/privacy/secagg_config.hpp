// SecureAggConfig: the settings of `--secure-agg` (filled by the CLI, checked before round 1).
#pragma once

#include <string>
#include <vector>

namespace fedgan::privacy {

// A simulated failure: party `party` fails after masking in round `round` (--secagg-drop P@R).
struct SecAggDrop {
  int party = 0;
  int round = 0;
};

struct SecureAggConfig {
  bool enabled = false;  // --secure-agg
  // --secagg-range B: bound on each value of one party's update Δ (before weighting); values
  // beyond are clamped (counted in the log). Sets the fixed-point scale: 0 = not given.
  double range = 0;
  double threshold = 0.5;         // --secagg-threshold f: t = min(m, max(2, ⌊f·m⌋ + 1))
  std::vector<SecAggDrop> drops;  // --secagg-drop
};

// "3@2" → {party 3, round 2}; fedgan::Error "--secagg-drop: ..." naming what is wrong.
SecAggDrop parse_secagg_drop(const std::string& text);

// Checks the settings against the run: a range when enabled, dropped parties and rounds in
// range, at least 2 participants per round (m = ⌈participation·P⌉). Throws fedgan::Error
// naming the option; every rank evaluates it alike.
void check_secure_agg(const SecureAggConfig& config, int total_parties, double participation,
                      int rounds);

}  // namespace fedgan::privacy
