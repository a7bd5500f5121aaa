// FederatedTrainer: the round loop (docs/DESIGN.md, "Life of a round"). Every rank trains its
// participating parties (PartyRunner → Update), passes each update through the transforms,
// agrees with the other ranks (stop, non-finite, timing), aggregates (the Aggregator that the
// config's factory makes, or make_aggregator's rule), runs the aggregate hooks, and applies the same ServerStep as every other rank.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/federated/adapt/controller.hpp"
#include "fedgan/federated/aggregation/aggregator.hpp"
#include "fedgan/federated/strategies/client_strategy.hpp"
#include "fedgan/federated/round/debug_hooks.hpp"
#include "fedgan/federated/round/pacing.hpp"
#include "fedgan/federated/round/participation.hpp"
#include "fedgan/federated/round/party_runner.hpp"
#include "fedgan/federated/server/server_optimizer.hpp"
#include "fedgan/federated/server/server_step.hpp"
#include "fedgan/federated/round/transforms.hpp"
#include "fedgan/federated/round/update.hpp"
#include "fedgan/federated/round/width_levels.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/train/ada.hpp"
#include "fedgan/train/local_trainer.hpp"
#include "fedgan/transfer/freeze_policy.hpp"

namespace fedgan::federated {

struct FederatedConfig {
  int rounds = 10;
  double participation = 1.0;  // fraction of parties drawn each round
  // Each party joins with probability `participation`, independently (client-level DP: what
  // the accountant assumes); otherwise exactly ceil(participation·P) parties are drawn.
  bool poisson_sampling = false;
  OptimizerState optimizer_state = OptimizerState::Reset;  // Adam state per party
  bool local_bn = false;        // keep BatchNorm running statistics per party (FedBN)
  bool skip_nonfinite = false;  // skip a party whose update is NaN/inf instead of stopping
  std::uint64_t seed = 0;
  ServerOptimizerConfig server;
  AggregatorConfig aggregator;
  // Makes the round's aggregator (the run sets it: secure aggregation lives in privacy);
  // empty: make_aggregator(aggregator).
  AggregatorFactory aggregator_factory;
  ClientStrategyConfig client;  // fedavg | fednova | scaffold, and FedProx's μ
  AttackSpec attack;  // simulated hostile parties (testing robust aggregation)
  transfer::FreezeConfig freeze_g, freeze_d;  // fine-tuning: frozen blocks, lr multipliers
  train::AdaConfig ada;  // adaptive augmentation strength: one p for the federation
  // Where this rank's models, parties' batches, optimizer states and the aggregation buffer
  // live (the run resolves --device into it).
  torch::Device device = torch::kCPU;
  // Post-processing of the global model after each completed round's server step, on every rank,
  // before the model check (the run sets it under DP: BatchNorm running variances raised to a
  // floor, as noise can make them negative); empty: none.
  std::function<void(models::Gan&)> after_server_step;
  // Width-heterogeneous parties (--width-ratios, HeteroFL): each party's ratio by party id;
  // inactive: every party trains the global model.
  WidthConfig widths;
  // Simulated party speeds, compute-aware local steps, buffered asynchronous aggregation
  // (federated/round/pacing.hpp).
  PacingConfig pacing;
  // The federation controller (--auto; federated/adapt/controller.hpp); no rules: off.
  adapt::ControllerConfig controller;
  // Whether each party's update norm travels in the round's party table (the controller's
  // signal); the run turns it off under secure aggregation and DP, whose point is that no rank
  // learns anything of one party's update.
  bool share_update_norms = true;
};

// One party's local training in a round, as every rank learns it (one allgather per round).
struct PartyTime {
  int party = 0;
  std::int64_t steps = 0;
  double seconds = 0;       // measured on its rank
  double step_seconds = 0;  // simulated clock: per step (--sim-step-seconds or measured) × speed
  double update_norm = 0;   // ‖Δ‖ of its update (0 when non-finite)
  bool finite = true;
  std::int64_t staleness = 0;  // asynchronous: server versions since it pulled its model
};

struct RoundReport {
  int round = 0;
  double wall_s = 0;       // whole round on this rank
  double local_s = 0;      // slowest rank's local training
  double own_local_s = 0;  // this rank's local training
  double wait_s = 0;       // this rank's wait for the slowest rank (agreement collective)
  double aggregate_s = 0;  // aggregation and the server step
  double d_loss = 0;       // mean over participating parties
  double g_loss = 0;
  std::int64_t parties = 0;   // participating parties that contributed
  std::int64_t skipped = 0;   // parties skipped for non-finite updates
  std::int64_t samples = 0;   // Σ n_k of contributing parties
  std::int64_t images = 0;    // real images processed in local training (all ranks)
  bool interrupted = false;   // a rank was asked to stop: nothing was aggregated
  double ada_r = 0;           // ADA: r_t = E[sign(D(real))] of the round, all parties
  double ada_p = 1;           // the augmentation probability after the round's update
  std::string abandoned;      // the aggregator gave up on the round (why); model unchanged
  // Pacing: every party trained in the round (ascending party id, then arrival), this round's
  // length on the simulated clock and the run's total on it so far (0 without simulation:
  // the measured slowest party, which is local_s).
  std::vector<PartyTime> party_times;
  double sim_s = 0, sim_time_s = 0;
  double mean_update_norm = 0;  // ‖the aggregate's mean parameter update‖ (before the server step)
};

class FederatedTrainer {
 public:
  FederatedTrainer(comm::Communicator& comm, const models::ModelConfig& model,
                   train::LocalTrainConfig local, FederatedConfig config,
                   std::vector<LocalParty> parties, int total_parties,
                   DebugHooks debug = {});

  models::Gan& global() { return *m_global; }
  const FederatedConfig& config() const { return m_config; }
  int total_parties() const { return m_total_parties; }
  const std::vector<LocalParty>& parties() const { return m_parties; }

  // The round's seams (docs/DESIGN.md): update transforms run in the order added, on each
  // finite update of this rank; aggregate transforms after the aggregation, on every rank;
  // regularizers change every local step.
  void add_update_transform(std::unique_ptr<UpdateTransform> transform);
  void add_aggregate_transform(std::unique_ptr<AggregateTransform> transform);
  void add_regularizer(std::shared_ptr<train::Regularizer> regularizer);
  Aggregator& aggregator() { return *m_aggregator; }
  // The width levels (null without --width-ratios).
  std::shared_ptr<const WidthLevels> widths() const { return m_widths; }

  // Rank 0's global model goes to every rank (one broadcast per model).
  void broadcast_global(int root = 0);
  // Freezes a copy of the current global model (the warm start) as the source that KD, EWC and
  // cross-domain correspondence anchor to (made once; later calls return the same copy). Its
  // generator has no gradients and both models are in eval mode.
  models::Gan& snapshot_source();
  const transfer::ParameterPlan& g_plan() const { return m_plans->g; }
  const transfer::ParameterPlan& d_plan() const { return m_plans->d; }
  // Values that one round aggregates (model part).
  std::int64_t aggregated_numel() const { return m_plans->aggregated_numel(); }
  // Runs round `round` (1-based). Throws a collective fedgan::Error on a non-finite update
  // unless skip_nonfinite; the global model is then unchanged. When `interrupted` answers
  // true on any rank, every rank abandons the round (report.interrupted) and the global
  // model stays that of round - 1, so a resumed run redoes the round exactly. A server step
  // that leaves the global model unusable (NaN/inf values, or NaN/inf images or logits of the
  // probe: federated/round/model_guard.hpp) puts round - 1's model back and throws a
  // collective fedgan::Error naming the round and the likely causes; the round's other state
  // (server optimizer, SCAFFOLD variates, ADA's p) is not rolled back: the run stops.
  RoundReport run_round(int round, const std::function<bool()>& interrupted = {});

  // The federation controller (--auto), after round `report.round` and its evaluation (`fid`:
  // NaN when none): observes the round, sets the next round's local steps, participation,
  // server step scale and excluded parties, and returns its decisions (the same on every rank;
  // empty when off or nothing changed).
  std::vector<adapt::Decision> adapt(const RoundReport& report, double fid);

  // Server optimizer state ("g/…", "d/…", SCAFFOLD's "scaffold/…" and, with ADA, "ada_p"
  // (float64 [1])) for checkpoints, and its restore.
  std::map<std::string, torch::Tensor> server_state() const;
  void load_server_state(const std::map<std::string, torch::Tensor>& state);

  // State that parties carry across rounds (Adam moments with optimizer_state = keep, BN
  // statistics with local_bn) of this rank's parties, as "party/<id>/<what>" tensors; and its
  // restore from a map that may hold every party's (each rank takes its own).
  std::map<std::string, torch::Tensor> party_state_tensors() const;
  void load_party_state_tensors(const std::map<std::string, torch::Tensor>& tensors);
  bool has_party_state() const { return m_runner->has_state() || m_scaffold != nullptr; }

 private:
  // This rank's part of a round before the agreement.
  struct LocalRound {
    bool stopped = false;
    std::int64_t first_bad_party = -1;
    double seconds = 0;
    std::vector<PartyTime> times;  // this rank's trained parties
  };
  LocalRound train_parties(const RoundContext& round, const std::function<bool()>& interrupted);
  // Synchronous rounds: who takes part (the seeded draw, minus parties that the time budget
  // gives no step) and, with --round-time-budget, each party's steps into m_party_steps.
  RoundContext round_context(int round);
  // Asynchronous: the buffer's arrivals (m_arrivals) and their parties as the round's
  // participants; the schedule is rebuilt and replayed to `round` - 1 when it is not there.
  RoundContext buffer_context(int round);
  // The hosted participants and the party tables, once the participants are known.
  void finish_context(RoundContext& context) const;
  LocalRound train_buffer(const RoundContext& round, const std::function<bool()>& interrupted);
  // Trains one party from `start` with `steps` local steps (0: planned), timed; adds its
  // update (weighted by `weight_scale`) to the aggregator.
  void train_one(const LocalParty& party, const models::Gan& start, const RoundContext& round,
                 std::int64_t steps, double weight_scale, std::int64_t staleness,
                 const std::function<bool()>& interrupted, LocalRound& out);
  // Every rank's party rows, the simulated clock's step times and the round's simulated length.
  void gather_party_times(const LocalRound& local, RoundReport& report);
  // After an asynchronous server step: keep the model versions that parties in flight train
  // from (the new one included when someone pulled it), drop the others.
  void keep_versions(int round);
  // Asynchronous: the weight w_k of party k's arrivals before staleness: n_k, or n_k × its
  // balance factor (--async-weighting balanced).
  double arrival_weight(int party) const;
  // The balance factor b_k (1 unless --async-weighting balanced).
  double balance_of(int party) const;
  // The agreement collective: slowest local time, first non-finite party and the stop flag,
  // so that no rank enters the aggregation alone. Fills the report's times and returns false
  // when the round is abandoned; throws the agreed non-finite error.
  bool agree(const LocalRound& local, RoundReport& report);
  // The width levels' coverage of this round into the aggregator.
  void install_coverage();
  // Every party's n_k and planned steps on every rank (one allgather, before the first round).
  void gather_party_table();
  // After the server step: inspect the global model (every rank alike) and agree on the verdict
  // (one allreduce of one int64); if unusable, put `g_before`/`d_before` back and throw.
  void check_global_model(const RoundReport& report, const AggregateResult& aggregate,
                          const torch::Tensor& g_before, const torch::Tensor& d_before);

  comm::Communicator& m_comm;
  FederatedConfig m_config;
  std::vector<LocalParty> m_parties;
  int m_total_parties;
  std::unique_ptr<models::Gan> m_global;
  std::shared_ptr<ModelPlans> m_plans;
  std::shared_ptr<WidthLevels> m_widths;
  std::unique_ptr<PartyRunner> m_runner;
  std::vector<std::unique_ptr<UpdateTransform>> m_update_transforms;
  std::unique_ptr<Aggregator> m_aggregator;
  std::vector<std::unique_ptr<AggregateTransform>> m_aggregate_transforms;
  std::unique_ptr<ServerStep> m_server;
  std::unique_ptr<models::Gan> m_source;
  std::shared_ptr<Scaffold> m_scaffold;  // --client-strategy scaffold
  std::vector<std::int64_t> m_party_samples, m_party_steps;  // by party id
  std::vector<std::int64_t> m_planned_steps;  // by party id: --local-steps/--local-epochs
  // Pacing: each party's last measured seconds per step (0: not yet), the simulated clock's total.
  std::vector<double> m_measured_step;
  double m_sim_time = 0;
  double m_sim_buffer_steps = 0;  // asynchronous: the current buffer's span in factor-1 steps
  // Asynchronous: the schedule, the current buffer's arrivals, the model versions parties in
  // flight started from (version → flat G, flat D) and the model they train from.
  std::unique_ptr<AsyncSchedule> m_schedule;
  std::vector<Arrival> m_arrivals;
  std::vector<double> m_balance;  // balance_factors of the schedule's parties
  std::map<std::int64_t, std::pair<torch::Tensor, torch::Tensor>> m_versions;
  std::unique_ptr<models::Gan> m_start;
  // The controller and what it set for the next round (its Settings, applied).
  std::unique_ptr<adapt::Controller> m_controller;
  double m_steps_scale = 1.0;
  std::vector<int> m_excluded;
  void apply_controller_settings();
  // One augmentation probability for every party: p follows the federation's r_t, summed with
  // the round's totals (train/ada.hpp), so every rank moves it alike.
  train::AdaController m_ada;
};

}  // namespace fedgan::federated
