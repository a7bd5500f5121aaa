// DpFedAvg: client-level DP-FedAvg (McMahan et al. 2018) on the round's two seams, with
// adaptive clipping (Andrew et al. 2021) and the RDP account of the run.
//
//   party (UpdateTransform, on its rank): Δ_k → clip the whole update (G and D, parameters and
//     BatchNorm statistics) to C_t → scale by w_k → [distributed: + N(0, (z_Δ C_t)²/|S_t|)]
//     → weight 1; adaptive: count b_k = 1{‖Δ_k‖ ≤ C_t} − ½ (+ its share of noise)
//   aggregate (AggregateTransform, every rank alike): [central: + N(0, (z_Δ C_t)²)] → divide by
//     the fixed denominator (never Σ n_k) → compose one round (q, z) into the account;
//     adaptive: one allreduce of the count, C_{t+1} = C_t·exp(−η(b̄ − γ))
//
// Every draw is seeded from (seed, party, round) or (seed, round), so every rank adds the same
// central noise without a broadcast and a resumed run draws what the uninterrupted one drew.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/federated/round/transforms.hpp"
#include "fedgan/privacy/dp_config.hpp"
#include "fedgan/privacy/rdp_accountant.hpp"

namespace fedgan::privacy {

class DpFedAvg {
 public:
  DpFedAvg(comm::Communicator& comm, DpPlan plan);

  // The two transforms of the round; they share this object, which must outlive them.
  std::unique_ptr<federated::UpdateTransform> update_transform();
  std::unique_ptr<federated::AggregateTransform> aggregate_transform();

  const DpPlan& plan() const { return m_plan; }
  double clip() const { return m_clip; }  // C of the next round
  int rounds_accounted() const { return m_rounds; }
  PrivacySpent spent(Conversion conversion = Conversion::Balle2020) const;
  // ε after `rounds` more rounds.
  PrivacySpent spent_after(int rounds, Conversion conversion = Conversion::Balle2020) const;
  // With --epsilon-budget E: whether the next round would take ε above E.
  bool next_round_exceeds_budget() const;
  // "(ε, δ)-DP at the party level for N rounds, …" for ε after `rounds` rounds in all.
  std::string guarantee(int rounds) const;

  // Checkpoint state ("privacy/orders", "privacy/rdp", "privacy/clip", "privacy/rounds",
  // float64 and int64 tensors) and its restore; load_state throws fedgan::Error when the orders
  // differ or a value is bad.
  std::map<std::string, torch::Tensor> state() const;
  void load_state(const std::map<std::string, torch::Tensor>& state);

 private:
  class ClipAndNoise;
  class NoiseAndAccount;
  comm::Communicator& m_comm;
  DpPlan m_plan;
  RdpAccountant m_accountant;
  double m_clip;
  int m_rounds = 0;
  // This rank's Σ(b_k − ½) (+ distributed count noise) in round m_count_round; a round that
  // was abandoned after its parties trained leaves a stale count, which the round number skips.
  double m_local_count = 0;
  int m_count_round = -1;
};

}  // namespace fedgan::privacy
