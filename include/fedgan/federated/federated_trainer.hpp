// FederatedTrainer: the round loop. Every rank trains its participating parties locally, then
// one fused allreduce forms Σ n_k·Δ_k with Σ n_k, and every rank applies the same server step.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/federated/fused_aggregator.hpp"
#include "fedgan/federated/server_optimizer.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/train/ada.hpp"
#include "fedgan/train/local_trainer.hpp"
#include "fedgan/transfer/freeze_policy.hpp"

namespace fedgan::federated {

struct FederatedConfig {
  int rounds = 10;
  double participation = 1.0;          // fraction of parties drawn each round
  std::string optimizer_state = "reset";  // reset | keep (Adam state per party across rounds)
  bool local_bn = false;               // keep BatchNorm running statistics per party
  bool skip_nonfinite = false;         // skip a party whose update is NaN/inf instead of stopping
  std::uint64_t seed = 0;
  ServerOptimizerConfig server;
  transfer::FreezeConfig freeze_g, freeze_d;  // fine-tuning: frozen blocks, lr multipliers
  train::AdaConfig ada;  // adaptive augmentation strength, one p for the federation
  // Where this rank's models, parties' batches, optimizer states and the aggregation buffer
  // live (the run resolves --device into it).
  torch::Device device = torch::kCPU;
  // Testing aid: this party's update is made NaN in this round.
  int debug_nan_party = -1;
  int debug_nan_round = -1;
};

struct LocalParty {
  int id = 0;  // global party id
  std::shared_ptr<train::PartyData> data;
};

struct RoundReport {
  int round = 0;
  double wall_s = 0;       // whole round on this rank
  double local_s = 0;      // slowest rank's local training
  double own_local_s = 0;  // this rank's local training
  double wait_s = 0;       // this rank's wait for the slowest rank (agreement collective)
  double aggregate_s = 0;  // the fused allreduce and the server step
  double d_loss = 0;       // mean over participating parties
  double g_loss = 0;
  std::int64_t parties = 0;   // participating parties that contributed
  std::int64_t skipped = 0;   // parties skipped for non-finite updates
  std::int64_t samples = 0;   // Σ n_k of contributing parties
  std::int64_t images = 0;    // real images processed in local training (all ranks)
  bool interrupted = false;   // a rank was asked to stop: nothing was aggregated
  double ada_r = 0;           // ADA: r_t = E[sign(D(real))] of the round, all parties
  double ada_p = 1;           // the augmentation probability after the round's update
};

// Same seeded draw on every rank: ceil(fraction * total) distinct parties, sorted.
std::vector<int> sample_participants(int total_parties, double fraction, std::uint64_t seed,
                                     int round);

// Derives a 64-bit seed from several numbers (splitmix64 mixing), e.g. (seed, party, round).
std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0);

class FederatedTrainer {
 public:
  FederatedTrainer(comm::Communicator& comm, const models::ModelConfig& model,
                   train::LocalTrainConfig local, FederatedConfig config,
                   std::vector<LocalParty> parties, int total_parties);

  models::Gan& global() { return *m_global; }
  const FederatedConfig& config() const { return m_config; }
  int total_parties() const { return m_total_parties; }

  // Rank 0's global model goes to every rank (one broadcast per model).
  void broadcast_global(int root = 0);
  // Freezes a copy of the current global generator as the distillation teacher (KD).
  void snapshot_teacher();
  const transfer::ParameterPlan& g_plan() const { return m_g_plan; }
  const transfer::ParameterPlan& d_plan() const { return m_d_plan; }
  // Values that one round's fused allreduce carries (model part).
  std::int64_t aggregated_numel() const;
  // Runs round `round` (1-based). Throws a collective fedgan::Error on a non-finite update
  // unless skip_nonfinite; the global model is then unchanged. When `interrupted` answers
  // true on any rank, every rank abandons the round (report.interrupted) and the global
  // model stays that of round - 1, so a resumed run redoes the round exactly.
  RoundReport run_round(int round, const std::function<bool()>& interrupted = {});

  // Server optimizer state ("g/…", "d/…") for checkpoints, and its restore.
  // With ADA, "ada_p" (float64 [1]) too.
  std::map<std::string, torch::Tensor> server_state() const;
  void load_server_state(const std::map<std::string, torch::Tensor>& state);

  // State that parties carry across rounds (Adam moments with optimizer_state = keep, BN
  // statistics with local_bn) of this rank's parties, as "party/<id>/<what>" tensors; and its
  // restore from a map that may hold every party's (each rank takes its own).
  std::map<std::string, torch::Tensor> party_state_tensors() const;
  void load_party_state_tensors(const std::map<std::string, torch::Tensor>& tensors);
  bool has_party_state() const { return m_config.optimizer_state == "keep" || m_config.local_bn; }

  // Per-party Adam state (optimizer_state = keep): this rank's parties.
  struct PartyState {
    std::optional<train::PartyOptimizers> optimizers;
    torch::Tensor g_buffers, d_buffers;  // local_bn
  };
  std::map<int, PartyState>& party_states() { return m_states; }

 private:
  comm::Communicator& m_comm;
  train::LocalTrainer m_trainer;
  FederatedConfig m_config;
  std::vector<LocalParty> m_parties;
  int m_total_parties;
  std::unique_ptr<models::Gan> m_global, m_local;
  std::unique_ptr<ServerOptimizer> m_server_g, m_server_d;
  std::map<int, PartyState> m_states;
  // Party state as it was before this round touched it (kept Adam moments are updated in
  // place), in the checkpoint's form, so an interrupted round leaves every party as the last
  // complete round left it.
  std::map<int, std::map<std::string, torch::Tensor>> m_round_backup;
  void backup_state(int party);
  void restore_round_backup();
  // One party's state as "party/<id>/<what>" tensors (aliasing the live ones), and its restore.
  void save_party_state(int party, std::map<std::string, torch::Tensor>& out) const;
  void load_party_state(int party, const std::map<std::string, torch::Tensor>& tensors);
  // A party's fresh optimizers on the local model, with the freeze plan's lr scales.
  train::PartyOptimizers new_party_optimizers();
  std::unique_ptr<FusedAggregator> m_aggregator;  // reused every round
  // One augmentation probability for every party: p follows the federation's r_t, summed in the
  // round's fused allreduce (see train/ada.hpp).
  train::AdaController m_ada;
  transfer::ParameterPlan m_g_plan, m_d_plan;
  std::unique_ptr<models::Gan> m_teacher;
};

}  // namespace fedgan::federated
