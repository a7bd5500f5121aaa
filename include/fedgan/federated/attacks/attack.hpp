// Simulated attacks, to test robust aggregation: chosen parties (--attackers) replace their
// honest update Δ by a hostile one before it leaves the party.
//   sign-flip     −Δ
//   scale:K       K·Δ
//   gaussian:σ    N(0, σ²) per coordinate, ignoring Δ (Blanchard et al. 2017's Gaussian
//                 Byzantine worker); seeded by (seed, party, round), so every run and rank
//                 count draws the same numbers
//   nan           every value NaN: the update is then non-finite and meets today's handling
//                 (the round stops, or the party is skipped with --skip-nonfinite)
// LibTorch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fedgan/core/choice.hpp"

namespace fedgan::federated {

struct AttackSpec {
  enum class Kind { None, SignFlip, Scale, Gaussian, NaN };
  Kind kind = Kind::None;
  double value = 0;            // K for scale, σ for gaussian
  std::vector<int> attackers;  // party ids, ascending, distinct

  bool active() const { return kind != Kind::None && !attackers.empty(); }
  bool attacks(int party) const;
};

// --attack's kinds: name, help, and the value a kind takes after ':' (nullptr: none).
struct AttackChoice {
  AttackSpec::Kind value;
  const char* name;
  const char* help;
  const char* parameter;  // "K" of scale:K
  const char* example;    // "scale:10", for a message
};
const ChoiceTable<AttackChoice>& attack_kinds();

// Parses --attack ("none", "sign-flip", "scale:K", "gaussian:σ", "nan") and --attackers (a
// comma-separated list of party ids, e.g. "0,3"; empty for none). Errors name the flag and
// what was expected. An attack without attackers (or the reverse) is an error.
AttackSpec parse_attack(const std::string& attack, const std::string& attackers);
// The --attack text of a spec ("scale:10").
std::string attack_name(const AttackSpec& spec);
// Checks the attackers against the number of parties (ids in [0, parties)); throws naming
// --attackers.
void check_attackers(const AttackSpec& spec, int parties);

// Turns party `party`'s update of round `round` (n float32 values) into the attacked one, in
// place; does nothing when the party is not an attacker.
void apply_attack(const AttackSpec& spec, int party, int round, std::uint64_t seed, float* update,
                  std::int64_t n);

}  // namespace fedgan::federated
