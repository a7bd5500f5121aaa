// Client strategies: how parties train and what their updates mean, on the round's seams.
// FedProx (Li et al. 2020): a proximal term μ/2·‖w − w_global‖² in every party's local
// objective (a regularizer: its gradient μ(w − w_global) is added before each optimizer step).
// FedNova (Wang et al. 2020): normalised averaging, each party's update rescaled by
// τ_eff/τ_k so parties that ran more local steps do not pull the mean their way (an update
// transform, so it composes with any --aggregator). SCAFFOLD (Karimireddy et al. 2020): control
// variates per party and on the server correct each local step for client drift (a regularizer,
// an update transform and an aggregate transform sharing the variates). FedBN (Li et al. 2021)
// is --local-bn (PartyRunner keeps each party's BatchNorm statistics).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/core/choice.hpp"
#include "fedgan/federated/round/transforms.hpp"
#include "fedgan/federated/server/server_step.hpp"
#include "fedgan/train/local_trainer.hpp"
#include "fedgan/train/regularizer.hpp"

namespace fedgan::federated {

// --client-strategy; FederatedTrainer's constructor installs each one's hooks.
enum class ClientStrategy { FedAvg, FedNova, Scaffold };
const ChoiceTable<Choice<ClientStrategy>>& client_strategies();
// fedgan::Error naming --client-strategy and the names for an unknown name.
ClientStrategy parse_client_strategy(const std::string& name);
std::string to_string(ClientStrategy strategy);

struct ClientStrategyConfig {
  ClientStrategy strategy = ClientStrategy::FedAvg;
  double prox_mu = 0;  // FedProx μ (0: no proximal term); composes with any strategy
};

// FedProx's proximal gradient μ(w − w_global) on the trainable parameters of G and D.
class FedProxRegularizer final : public train::Regularizer {
 public:
  explicit FedProxRegularizer(double mu);
  void begin_party(const train::PartyStart& start) override;
  void before_step(train::Net net, const torch::Tensor& params, torch::Tensor& grad) override;

 private:
  double m_mu;
  const models::Gan* m_global = nullptr;
};

// FedNova's rescaling, on the parameter segments of each update: Δ_k ← Δ_k · τ_eff / τ_k with
// τ_eff = Σ_{k∈S} n_k τ_k / Σ_{k∈S} n_k over the round's participants S (their planned local
// steps, from RoundContext). With equal τ_k the factor is exactly 1 and the update unchanged.
// Buffers (BatchNorm statistics) are averaged as under FedAvg.
class FedNovaTransform final : public UpdateTransform {
 public:
  std::string name() const override { return to_string(ClientStrategy::FedNova); }
  void apply(Update& update, const RoundContext& round) override;
  // τ_eff / τ_k for party k in this round (exposed for tests).
  static double factor(int party, const RoundContext& round);
};

// SCAFFOLD, option II, with Adam as the local optimizer: the variates live in the space of the
// optimizer's steps. After each local optimizer step the parameters move by −η·s ⊙ (c − c_k)
// (η the learning rate, s the freeze plan's per-element scale); after K steps
// c_k⁺ = c_k − c + (x − y_k)/(K·η·s), and the server sets c ← c + (1/N)·Σ_{k∈S}(c_k⁺ − c_k)
// (N parties in all). With zero variates (round 1) the correction adds exactly zero, so the
// round equals FedAvg bit for bit. c_k⁺ is committed only when the round completes (an
// abandoned round leaves every variate as it was). Variates cover the aggregated parameters
// (the plans' param_index); checkpoints hold c ("scaffold/c_g", "scaffold/c_d" in the server
// state) and each party's c_k ("party/<k>/scaffold_c_g", "party/<k>/scaffold_c_d").
class Scaffold {
 public:
  Scaffold(std::shared_ptr<const ModelPlans> plans, const train::LocalTrainConfig& local,
           int total_parties, const torch::Device& device);
  std::shared_ptr<train::Regularizer> regularizer();
  std::unique_ptr<UpdateTransform> update_transform();
  // Runs one allreduce of Σ Δc_k (float64) on `comm` every completed round.
  std::unique_ptr<AggregateTransform> aggregate_transform(comm::Communicator& comm);

  std::map<std::string, torch::Tensor> server_state() const;
  void load_server_state(const std::map<std::string, torch::Tensor>& state);
  std::map<std::string, torch::Tensor> party_state() const;
  void load_party_state(const std::map<std::string, torch::Tensor>& state,
                        const std::vector<int>& ids);
  // The server variate of G's and D's aggregated parameters (tests).
  const torch::Tensor& c_g() const { return m_c[0]; }
  const torch::Tensor& c_d() const { return m_c[1]; }

 private:
  friend class ScaffoldRegularizer;
  friend class ScaffoldUpdate;
  friend class ScaffoldAggregate;
  // Forgets the pending variates of an earlier (abandoned) round when `round` starts.
  void open_round(int round);
  struct PartyVariates {
    torch::Tensor c[2];  // G, D (float32, aggregated parameters only)
  };
  torch::Tensor party_variate(int party, int net) const;  // zeros when the party has none
  std::shared_ptr<const ModelPlans> m_plans;
  double m_lr[2];
  int m_d_steps;
  int m_total;
  torch::Device m_device;
  torch::Tensor m_c[2];                   // server variates c (G, D)
  torch::Tensor m_step_scale[2];          // η·s at the aggregated parameters
  std::map<int, PartyVariates> m_parties;  // c_k of this rank's parties
  // The round in progress: the party being trained, its correction (c − c_k) scattered over
  // the parameter view, and c_k⁺ waiting for the round to complete.
  int m_current = -1;
  torch::Tensor m_correction[2];
  int m_pending_round = -1;
  std::map<int, PartyVariates> m_pending;
  torch::Tensor m_delta_sum;  // float64 [G | D]: Σ (c_k⁺ − c_k) of this rank's parties
};

}  // namespace fedgan::federated
