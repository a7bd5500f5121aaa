// PartyRunner: one party's local training in a round, from the global model to its Update.
// It owns the rank's one local model (parties train one after another in it), the
// LocalTrainer with its regularizers, and what parties carry across rounds: kept Adam moments
// (--optimizer-state keep) and BatchNorm statistics (--local-bn), with a per-round backup so an
// abandoned round leaves every party as the last complete round left it.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fedgan/core/choice.hpp"
#include "fedgan/data/party_data.hpp"
#include "fedgan/federated/attacks/attack.hpp"
#include "fedgan/federated/round/debug_hooks.hpp"
#include "fedgan/federated/server/server_step.hpp"
#include "fedgan/federated/round/update.hpp"
#include "fedgan/federated/round/width_levels.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/train/local_trainer.hpp"

namespace fedgan::federated {

// Adam state of a party across rounds: fresh every round, or its own moments kept
// (--optimizer-state reset | keep).
enum class OptimizerState { Reset, Keep };
const ChoiceTable<Choice<OptimizerState>>& optimizer_states();

struct LocalParty {
  int id = 0;  // global party id
  std::shared_ptr<data::PartyData> data;
};

struct PartyRunnerConfig {
  OptimizerState optimizer_state = OptimizerState::Reset;
  bool local_bn = false;  // keep BatchNorm statistics per party
  std::uint64_t seed = 0;
  torch::Device device = torch::kCPU;
  DebugHooks debug;
  // Simulated hostile parties (--attack, --attackers): their updates are replaced before the
  // finiteness check, so a NaN attack meets the non-finite handling like a real NaN.
  AttackSpec attack;
  // Width levels (--width-ratios): each party trains its level's sub-model, cut from the global
  // model and put back into the global layout as its update; null: every party trains the
  // global model.
  std::shared_ptr<const WidthLevels> widths;
};

class PartyRunner {
 public:
  // Builds the local model (drawing its initial weights from torch's global generator, as the
  // trainer always did after the global model).
  PartyRunner(const models::ModelConfig& model, train::LocalTrainConfig local,
              PartyRunnerConfig config, std::shared_ptr<const ModelPlans> plans);

  train::LocalTrainer& trainer() { return m_trainer; }
  // The local steps a party runs per round: --local-steps, or --local-epochs times its batches
  // per epoch.
  std::int64_t planned_steps(const data::PartyData& data) const;

  // Forgets the previous round's backups (call before the round's first party).
  void begin_round();
  // Trains `party` in the round from `global`: local ← global (+ its BN statistics), its Adam
  // state, LocalTrainer::run with the generator seeded (seed, party + 1, round). Returns its
  // Update (finite = false: not to be aggregated), or nullopt when `interrupted` stopped it.
  // `steps` > 0: that many local steps instead of the planned ones (pacing).
  std::optional<Update> run(const LocalParty& party, const models::Gan& global,
                            const RoundContext& round, const std::function<bool()>& interrupted,
                            std::int64_t steps = 0);
  // Every party trained this round goes back to its state before the round.
  void restore_round();

  // Whether parties keep state across rounds (then checkpoints carry it).
  bool has_state() const;
  // How many parties hold state now (0 unless has_state(): memory per party: docs/results/memory.md).
  std::size_t parties_with_state() const { return m_states.size(); }
  // This rank's parties' state as "party/<id>/<what>" tensors (checkpoint_layout.hpp), aliasing
  // the live ones; and its restore from a map that may hold every party's (each rank takes the
  // parties in `ids`).
  std::map<std::string, torch::Tensor> state_tensors() const;
  void load_state_tensors(const std::map<std::string, torch::Tensor>& tensors,
                          const std::vector<int>& ids);

 private:
  struct PartyState {
    std::optional<train::PartyOptimizers> optimizers;
    torch::Tensor g_buffers, d_buffers;  // local_bn
  };
  // The model a party of `level` trains in (the global architecture without widths).
  models::Gan& local_model(int level);
  train::PartyOptimizers new_optimizers(int level);
  // Replaces an attacker's update (m_config.attack) and re-checks that it is finite.
  void attack_update(Update& update, const RoundContext& round) const;
  void save_state(int party, std::map<std::string, torch::Tensor>& out) const;
  void load_state(int party, const std::map<std::string, torch::Tensor>& tensors);
  void backup(int party);

  PartyRunnerConfig m_config;
  std::shared_ptr<const ModelPlans> m_plans;
  std::unique_ptr<models::Gan> m_local;
  std::vector<std::unique_ptr<models::Gan>> m_level_models;  // width levels: one per level
  train::LocalTrainer m_trainer;
  std::map<int, PartyState> m_states;  // only parties with state (has_state())
  // --optimizer-state reset: the Adam of the party in training, made fresh for each party.
  std::optional<train::PartyOptimizers> m_fresh_optimizers;
  // Party state as it was before this round touched it (kept Adam moments are updated in
  // place), in the checkpoint's form.
  std::map<int, std::map<std::string, torch::Tensor>> m_backup;
};

}  // namespace fedgan::federated
