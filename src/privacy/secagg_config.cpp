// --secure-agg settings: parsing and the checks against the run (see secagg_config.hpp).
#include "fedgan/privacy/secagg_config.hpp"

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

void check_secure_agg(const SecureAggConfig& c, int total_parties, double participation,
                      int rounds) {
  if (!c.enabled) {
    require(c.drops.empty(), "--secagg-drop: needs --secure-agg");
    return;
  }
  require(std::isfinite(c.range) && c.range > 0,
          "--secure-agg: needs --secagg-range B > 0, the bound on each value of a party's "
          "update (it sets the fixed-point scale so that the masked sum cannot wrap)");
  require(c.threshold > 0 && c.threshold <= 1,
          "--secagg-threshold: must be in (0, 1] (got " + std::to_string(c.threshold) + ")");
  const auto m = static_cast<int>(std::ceil(participation * total_parties - 1e-9));
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
