// Simulated attacks (see include/fedgan/federated/attacks/attack.hpp).
#include "fedgan/federated/attacks/attack.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "fedgan/core/error.hpp"
#include "fedgan/data/random.hpp"

namespace fedgan::federated {
namespace {

// "atk" as an integer: the attack stream's own seed, apart from every other draw.
constexpr std::uint64_t kAttackStream = 0x61746b;

double parse_attack_number(const std::string& text, const std::string& attack) {
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(begin, &end);
  if (text.empty() || end != begin + text.size() || errno == ERANGE || !std::isfinite(v))
    throw Error("--attack " + attack + ": '" + text + "' is not a finite number");
  return v;
}

// "none, sign-flip, scale:K, gaussian:SIGMA or nan"; `skip_none` leaves none out.
std::string attack_list(bool skip_none) {
  std::vector<std::string> items;
  for (const auto& k : attack_kinds())
    if (!(skip_none && k.value == AttackSpec::Kind::None))
      items.push_back(std::string(k.name) + (k.parameter ? std::string(":") + k.parameter : ""));
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i)
    out += (i == 0 ? "" : i + 1 == items.size() ? " or " : ", ") + items[i];
  return out;
}

}  // namespace

const ChoiceTable<AttackChoice>& attack_kinds() {
  static const AttackChoice entries[] = {
      {AttackSpec::Kind::None, "none", "", nullptr, nullptr},
      {AttackSpec::Kind::SignFlip, "sign-flip", "", nullptr, nullptr},
      {AttackSpec::Kind::Scale, "scale", "", "K", "scale:10"},
      {AttackSpec::Kind::Gaussian, "gaussian", "N(0, SIGMA^2) noise", "SIGMA", "gaussian:1.0"},
      {AttackSpec::Kind::NaN, "nan", "", nullptr, nullptr},
  };
  static const ChoiceTable<AttackChoice> table(entries, "--attack", "attack");
  return table;
}

bool AttackSpec::attacks(int party) const {
  return kind != Kind::None && std::binary_search(attackers.begin(), attackers.end(), party);
}

AttackSpec parse_attack(const std::string& attack, const std::string& attackers) {
  AttackSpec spec;
  const auto colon = attack.find(':');
  const std::string name = attack.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : attack.substr(colon + 1);
  const std::string expected = " (expected " + attack_list(false) + ")";
  const AttackChoice* kind = attack_kinds().find(name);
  if (kind == nullptr) throw Error("--attack: '" + attack + "' is not an attack" + expected);
  spec.kind = kind->value;
  if (kind->parameter == nullptr) {
    if (colon != std::string::npos)
      throw Error("--attack " + attack + ": '" + name + "' takes no value" + expected);
  } else {
    if (colon == std::string::npos)
      throw Error("--attack " + attack + ": '" + name + "' needs a value, e.g. " + kind->example);
    spec.value = parse_attack_number(arg, attack);
    if (spec.kind == AttackSpec::Kind::Gaussian && !(spec.value > 0))
      throw Error("--attack " + attack + ": the standard deviation must be > 0");
  }

  std::stringstream list(attackers);
  std::string item;
  while (std::getline(list, item, ',')) {
    const char* begin = item.c_str();
    char* end = nullptr;
    errno = 0;
    const long id = std::strtol(begin, &end, 10);
    if (item.empty() || end != begin + item.size() || errno == ERANGE || id < 0 ||
        id > std::numeric_limits<int>::max())
      throw Error("--attackers: '" + item +
                  "' is not a party id (expected comma-separated integers >= 0, e.g. 0,3)");
    if (std::find(spec.attackers.begin(), spec.attackers.end(), id) != spec.attackers.end())
      throw Error("--attackers: party " + item + " is listed twice");
    spec.attackers.push_back(static_cast<int>(id));
  }
  if (!attackers.empty() && attackers.back() == ',')
    throw Error("--attackers: '" + attackers + "' ends with a comma");
  std::sort(spec.attackers.begin(), spec.attackers.end());
  if (spec.kind != AttackSpec::Kind::None && spec.attackers.empty())
    throw Error("--attack " + attack + " needs --attackers (the parties that attack, e.g. 0,3)");
  if (spec.kind == AttackSpec::Kind::None && !spec.attackers.empty())
    throw Error("--attackers " + attackers + " needs an --attack (" + attack_list(true) + ")");
  return spec;
}

std::string attack_name(const AttackSpec& spec) {
  const auto& kind = attack_kinds().of(spec.kind);
  if (kind.parameter == nullptr) return kind.name;
  std::ostringstream out;
  out << kind.name << ":" << spec.value;
  return out.str();
}

void check_attackers(const AttackSpec& spec, int parties) {
  for (int id : spec.attackers)
    if (id >= parties)
      throw Error("--attackers: party " + std::to_string(id) + " does not exist (the run has " +
                  std::to_string(parties) + " parties, ids 0.." + std::to_string(parties - 1) +
                  ")");
}

void apply_attack(const AttackSpec& spec, int party, int round, std::uint64_t seed, float* update,
                  std::int64_t n) {
  if (!spec.attacks(party)) return;
  switch (spec.kind) {
    case AttackSpec::Kind::None:
      return;
    case AttackSpec::Kind::SignFlip:
      for (std::int64_t i = 0; i < n; ++i) update[i] = -update[i];
      return;
    case AttackSpec::Kind::Scale: {
      const auto k = static_cast<float>(spec.value);
      for (std::int64_t i = 0; i < n; ++i) update[i] *= k;
      return;
    }
    case AttackSpec::Kind::Gaussian: {
      data::Rng rng(data::derive_seed(data::derive_seed(seed, kAttackStream),
                                      static_cast<std::uint64_t>(party),
                                      static_cast<std::uint64_t>(round)));
      for (std::int64_t i = 0; i < n; ++i)
        update[i] = static_cast<float>(spec.value * rng.normal());
      return;
    }
    case AttackSpec::Kind::NaN:
      std::fill(update, update + n, std::numeric_limits<float>::quiet_NaN());
      return;
  }
}

}  // namespace fedgan::federated
