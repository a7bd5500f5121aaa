// Pacing (see include/fedgan/federated/round/pacing.hpp).
#include "fedgan/federated/round/pacing.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "fedgan/core/error.hpp"

namespace fedgan::federated {

const ChoiceTable<Choice<Staleness>>& staleness_rules() {
  static const Choice<Staleness> entries[] = {
      {Staleness::Sqrt, "sqrt", "s(tau) = 1/sqrt(1 + tau) (FedBuff)"},
      {Staleness::Inverse, "inverse", "s(tau) = 1/(1 + tau)"},
      {Staleness::None, "none", "s(tau) = 1"},
  };
  static const ChoiceTable<Choice<Staleness>> table(entries, "--staleness", "staleness weighting");
  return table;
}

double staleness_weight(Staleness rule, std::int64_t tau) {
  require(tau >= 0, "staleness: negative tau " + std::to_string(tau));
  const double t = static_cast<double>(tau);
  switch (rule) {
    case Staleness::Sqrt: return 1.0 / std::sqrt(1.0 + t);
    case Staleness::Inverse: return 1.0 / (1.0 + t);
    case Staleness::None: break;
  }
  return 1.0;
}

const ChoiceTable<Choice<ArrivalWeighting>>& arrival_weightings() {
  static const Choice<ArrivalWeighting> entries[] = {
      {ArrivalWeighting::Samples, "samples", "n_k x s(tau) (FedBuff)"},
      {ArrivalWeighting::Balanced, "balanced",
       "n_k x s(tau) x the party's time between arrivals / the mean one"},
  };
  static const ChoiceTable<Choice<ArrivalWeighting>> table(entries, "--async-weighting",
                                                           "arrival weighting");
  return table;
}

std::vector<double> balance_factors(const std::vector<std::int64_t>& steps,
                                    const std::vector<double>& speed) {
  std::vector<double> length(steps.size(), 0.0), out(steps.size(), 0.0);
  double sum = 0;
  int n = 0;
  for (std::size_t k = 0; k < steps.size(); ++k) {
    length[k] = static_cast<double>(steps[k]) * speed[k];
    if (std::isfinite(length[k])) sum += length[k], n += 1;
  }
  for (std::size_t k = 0; k < steps.size(); ++k)
    if (std::isfinite(length[k]) && sum > 0) out[k] = length[k] * n / sum;
  return out;
}

double PacingConfig::speed_of(int party) const {
  const auto it = speed.find(party);
  return it == speed.end() ? 1.0 : it->second;
}

std::map<int, double> parse_party_speeds(const std::string& text) {
  std::map<int, double> out;
  if (text.empty()) return out;
  std::size_t a = 0;
  const std::string expected = " (expected ID=FACTOR,..., e.g. 0=4,3=inf: party ids >= 0, "
                               "factors > 0 or inf)";
  while (a <= text.size()) {
    const auto b = std::min(text.find(',', a), text.size());
    const std::string entry = text.substr(a, b - a);
    const auto eq = entry.find('=');
    require(eq != std::string::npos && eq > 0 && eq + 1 < entry.size(),
            "--party-speed: '" + entry + "' is not ID=FACTOR" + expected);
    const std::string id_text = entry.substr(0, eq), factor_text = entry.substr(eq + 1);
    char* end = nullptr;
    const long id = std::strtol(id_text.c_str(), &end, 10);
    require(*end == '\0' && id >= 0 && id < 1000000,
            "--party-speed: '" + id_text + "' is not a party id" + expected);
    double factor = 0;
    if (factor_text == "inf") {
      factor = std::numeric_limits<double>::infinity();
    } else {
      factor = std::strtod(factor_text.c_str(), &end);
      require(*end == '\0' && std::isfinite(factor) && factor > 0,
              "--party-speed: factor '" + factor_text + "' of party " + id_text +
                  " is not a positive number or inf" + expected);
    }
    require(out.emplace(static_cast<int>(id), factor).second,
            "--party-speed: party " + id_text + " is given twice");
    a = b + 1;
  }
  return out;
}

std::string format_party_speeds(const std::map<int, double>& speed) {
  std::string out;
  for (const auto& [id, f] : speed) {
    char buf[64];
    if (std::isinf(f))
      std::snprintf(buf, sizeof(buf), "%d=inf", id);
    else
      std::snprintf(buf, sizeof(buf), "%d=%.17g", id, f);
    out += (out.empty() ? "" : ",") + std::string(buf);
  }
  return out;
}

std::string pacing_problem(const PacingConfig& c, int parties) {
  for (const auto& [id, f] : c.speed)
    if (id >= parties)
      return "--party-speed: party " + std::to_string(id) + " is not one of the " +
             std::to_string(parties) + " parties (ids 0.." + std::to_string(parties - 1) + ")";
  if (c.async_buffer > parties)
    return "--async-buffer " + std::to_string(c.async_buffer) + ": larger than the " +
           std::to_string(parties) + " parties, so no buffer would ever fill";
  int hung = 0;
  for (const auto& entry : c.speed) hung += std::isinf(entry.second) ? 1 : 0;
  if (hung > 0 && !c.async() && !c.compute_aware())
    return "--party-speed: a party with factor inf never finishes, and a synchronous round "
           "waits for every party; add --round-time-budget (it sits such a party out) or "
           "--async-buffer (the others go on without it)";
  if (c.async() && parties - hung < c.async_buffer)
    return "--async-buffer " + std::to_string(c.async_buffer) + ": only " +
           std::to_string(parties - hung) + " parties ever finish (the others have factor inf)";
  return "";
}

std::int64_t budget_steps(double budget, double step_seconds) {
  if (!(step_seconds > 0) || std::isinf(step_seconds)) return 0;
  const double steps = std::floor(budget / step_seconds);
  return steps >= 1e12 ? static_cast<std::int64_t>(1e12) : static_cast<std::int64_t>(steps);
}

AsyncSchedule::AsyncSchedule(int buffer, std::vector<std::int64_t> steps,
                             std::vector<double> speed)
    : m_buffer(buffer), m_steps(std::move(steps)), m_speed(std::move(speed)) {
  require(m_buffer > 0, "async schedule: buffer must be > 0");
  require(m_steps.size() == m_speed.size(), "async schedule: one speed per party");
  m_flight.resize(m_steps.size());
  for (std::size_t p = 0; p < m_flight.size(); ++p) {
    m_flight[p].session = 1;
    m_flight[p].finish = static_cast<double>(m_steps[p]) * m_speed[p];
  }
}

std::vector<Arrival> AsyncSchedule::next_buffer() {
  std::vector<Arrival> out;
  while (static_cast<int>(out.size()) < m_buffer) {
    // The next arrival: the earliest finish, ties to the lower party id.
    std::size_t next = m_flight.size();
    for (std::size_t p = 0; p < m_flight.size(); ++p)
      if (std::isfinite(m_flight[p].finish) &&
          (next == m_flight.size() || m_flight[p].finish < m_flight[next].finish))
        next = p;
    require(next < m_flight.size(), "async schedule: no party can finish");
    auto& f = m_flight[next];
    out.push_back({static_cast<int>(next), f.session, f.start_version, f.start_time, f.finish});
    // It pulls the newest model when it arrives (set below) and trains again.
    const double now = f.finish;
    f.session += 1;
    f.start_version = m_version;
    f.start_time = now;
    f.finish = now + static_cast<double>(m_steps[next]) * m_speed[next];
  }
  m_version += 1;
  m_time = out.back().time;
  // The server steps at the buffer's last arrival; whoever arrived at that same instant pulls
  // the new version (the server handles an instant's arrivals before it answers them), so
  // parties of equal speed stay in step and K = all parties is a synchronous round.
  for (const auto& a : out)
    if (a.time == m_time) m_flight[static_cast<std::size_t>(a.party)].start_version = m_version;
  return out;
}

std::vector<std::int64_t> AsyncSchedule::versions_in_flight() const {
  std::set<std::int64_t> v;
  for (const auto& f : m_flight)
    if (std::isfinite(f.finish)) v.insert(f.start_version);
  return {v.begin(), v.end()};
}

}  // namespace fedgan::federated
