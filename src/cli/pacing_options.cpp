// `train`'s pacing options (docs/reference.md, "Parties of different speeds"): simulated
// slowdowns, compute-aware local steps and buffered asynchronous aggregation.
#include "fedgan/cli/train_options.hpp"
#include "fedgan/cli/validators.hpp"

namespace fedgan::cli {

void add_pacing_options(CLI::App& sub, TrainOptions& options) {
  TrainOptions& o = options;
  auto& p = options.run.federated.pacing;
  const std::string group = "Pacing (docs/reference.md, Parties of different speeds)";
  sub.add_option("--party-speed", o.party_speed,
                 "SIMULATION: slow parties down by a factor on the run's simulated clock, "
                 "ID=FACTOR,... (e.g. 0=4,1=4; inf: the party never finishes); nothing sleeps: "
                 "a party's step costs its measured (or --sim-step-seconds) time x FACTOR there, "
                 "reported as sim_* columns")
      ->check(parsed_by([](const std::string& s) { federated::parse_party_speeds(s); },
                        "--party-speed", "ID=FACTOR,..."))
      ->group(group);
  sub.add_option("--sim-step-seconds", p.step_seconds,
                 "the simulated clock's time of one local step at factor 1 (deterministic: "
                 "tests, measurements); 0: each party's measured seconds per step")
      ->capture_default_str()
      ->check(non_negative_float())
      ->group(group);
  sub.add_option("--round-time-budget", p.round_time_budget,
                 "compute-aware rounds: each party runs floor(BUDGET / its step time) local "
                 "steps (its time: measured in its last round, or --sim-step-seconds, x its "
                 "--party-speed), so all finish together; a party that cannot finish one step "
                 "sits the round out; combine with --client-strategy fednova; 0: off")
      ->capture_default_str()
      ->check(non_negative_float())
      ->group(group);
  sub.add_option("--async-buffer", p.async_buffer,
                 "buffered asynchronous aggregation (FedBuff): every party trains continuously "
                 "from the newest model it can pull, and the server steps after every K "
                 "arrivals, weighting each by --staleness; arrivals follow the simulated clock "
                 "(a replay: computed, not raced); --rounds counts server steps; 0: synchronous")
      ->capture_default_str()
      ->check(non_negative())
      ->group(group);
  add_choice(sub, o.staleness, federated::staleness_rules(),
             "with --async-buffer: the weight of an update tau server steps old")
      ->group(group);
  add_choice(sub, o.async_weighting, federated::arrival_weightings(),
             "with --async-buffer: the weight of an arriving update besides staleness")
      ->group(group);
  sub.add_option("--auto", o.auto_rules,
                 "the federation controller: after every round it adjusts the strategy rule by "
                 "rule and logs each decision with its signal (decisions.csv): quarantine "
                 "(exclude a party with a non-finite or outlying update for 3 rounds), steps "
                 "(local steps from the parties' agreement), server-lr (the server step from the "
                 "FID trend), participation (more parties when the FID stalls); `all`, `off` or "
                 "a comma list (docs/reference.md, \"The controller\")")
      ->capture_default_str()
      ->check(parsed_by([](const std::string& s) { federated::adapt::parse_controller_rules(s); },
                        "--auto", "all|off|RULE,..."))
      ->group(group);
}

}  // namespace fedgan::cli
