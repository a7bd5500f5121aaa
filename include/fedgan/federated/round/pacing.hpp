// Pacing: how long each party's local work takes, how much of it a round asks for, and, for
// buffered asynchronous aggregation (FedBuff), in which order the parties' updates arrive
// (docs/DESIGN.md, "Pacing and asynchronous aggregation").
//
// Time here has two sources. Measured: the seconds a party's local steps took on its rank,
// logged every round. Simulated: --party-speed slows chosen parties by a factor on a clock that
// the run keeps beside the real one (a party's step costs its measured, or --sim-step-seconds,
// time × its factor); nothing sleeps, and every file that shows simulated time says so.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "fedgan/core/choice.hpp"

namespace fedgan::federated {

// How a stale update is weighted: s(τ), τ = server versions since the party pulled its model.
enum class Staleness { None, Sqrt, Inverse };
const ChoiceTable<Choice<Staleness>>& staleness_rules();
double staleness_weight(Staleness rule, std::int64_t tau);

// How an arriving update is weighted besides staleness: by its samples n_k (FedBuff), or by n_k ×
// its party's time between arrivals over the mean one (balanced: a party that arrives four times
// as often does not count four times as much per unit of time).
enum class ArrivalWeighting { Samples, Balanced };
const ChoiceTable<Choice<ArrivalWeighting>>& arrival_weightings();

struct PacingConfig {
  // --party-speed: slowdown factor of a party's steps by party id (absent: 1); +inf: the party
  // never finishes (a hung party). Simulated: it only scales the party's clock.
  std::map<int, double> speed;
  // --sim-step-seconds: > 0: a factor-1 local step takes exactly this long on the simulated
  // clock (deterministic: tests and measurements); 0: each party's measured seconds per step.
  double step_seconds = 0;
  // --round-time-budget: > 0: each party's local steps in a round are ⌊budget / its step time⌋
  // (at least 1; a party that cannot finish one step sits the round out); 0: planned steps.
  double round_time_budget = 0;
  // --async-buffer K: > 0: buffered asynchronous aggregation; the server steps every K arrivals.
  int async_buffer = 0;
  Staleness staleness = Staleness::Sqrt;  // --staleness
  ArrivalWeighting weighting = ArrivalWeighting::Samples;  // --async-weighting

  double speed_of(int party) const;
  bool simulated() const { return !speed.empty() || step_seconds > 0; }
  bool compute_aware() const { return round_time_budget > 0; }
  bool async() const { return async_buffer > 0; }
  // Any of them: the run keeps the simulated clock (metrics' sim_* columns, its checkpoint key).
  bool active() const { return simulated() || compute_aware() || async(); }
};

// "ID=FACTOR,ID=FACTOR" (FACTOR > 0, or inf) → by party id; fedgan::Error naming --party-speed.
std::map<int, double> parse_party_speeds(const std::string& text);
// The same map back as text ("" when empty), for config files.
std::string format_party_speeds(const std::map<int, double>& speed);
// Why these pacing settings cannot work with `parties` parties ("" when they can): ids out of
// range, a buffer larger than the federation, a hung party in synchronous rounds.
std::string pacing_problem(const PacingConfig& config, int parties);

// The balanced weighting's factor of each party: its session's length steps·speed over the mean
// over the parties that ever arrive (0 for a party that never does).
std::vector<double> balance_factors(const std::vector<std::int64_t>& steps,
                                    const std::vector<double>& speed);

// Local steps of a party whose step takes `step_seconds` under `budget` seconds: ⌊budget /
// step_seconds⌋, 0 for a party that cannot finish one step (and for an infinite step time).
std::int64_t budget_steps(double budget, double step_seconds);

// One update's arrival at the server in the asynchronous replay.
struct Arrival {
  int party = 0;
  std::int64_t session = 0;        // the party's local-training session, 1-based
  std::int64_t start_version = 0;  // the server version it trained from (0: the warm start)
  double start_time = 0, time = 0;  // in factor-1 steps on the simulated clock
};

// The asynchronous replay's schedule: every party trains its `steps[p]` local steps at once,
// from the newest server version when it starts; its update arrives steps·speed later, and the
// server steps (version + 1) after every `buffer` arrivals; the party then starts again from the
// newest version (the new one if its arrival completed the buffer). Arrivals are ordered by
// (time, party id), so the order is computed, not raced, and every rank computes the same one.
// A party with infinite speed factor never arrives.
class AsyncSchedule {
 public:
  AsyncSchedule(int buffer, std::vector<std::int64_t> steps, std::vector<double> speed);
  // The arrivals that make server version `version` (1-based, consecutive calls 1, 2, ...).
  // Throws fedgan::Error when no party can arrive any more.
  std::vector<Arrival> next_buffer();
  std::int64_t version() const { return m_version; }  // server versions made so far
  // The versions that parties now in flight started from (what resuming needs), ascending.
  std::vector<std::int64_t> versions_in_flight() const;
  double time() const { return m_time; }  // the last buffer's completion, factor-1 steps

 private:
  struct InFlight {
    std::int64_t session = 0, start_version = 0;
    double start_time = 0, finish = 0;
  };
  int m_buffer;
  std::vector<std::int64_t> m_steps;
  std::vector<double> m_speed;
  std::vector<InFlight> m_flight;  // by party id
  std::int64_t m_version = 0;
  double m_time = 0;
};

}  // namespace fedgan::federated
