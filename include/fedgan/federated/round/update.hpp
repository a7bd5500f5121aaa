// What flows through a round (docs/DESIGN.md, "Life of a round"): each party's Update, the
// RoundContext every step sees, and the AggregateResult the server step applies.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fedgan::federated {

// The four slices of a model update, in this order everywhere (updates, aggregates, buffers):
// trainable G parameters, aggregated G buffers (BatchNorm statistics), then the same for D.
// Frozen values are not in any slice (transfer::ParameterPlan lists the indices).
enum Segment : std::size_t { kGParams = 0, kGBuffers, kDParams, kDBuffers, kSegments };

// One party's contribution to a round.
struct Update {
  int party = -1;
  // The update is summed as weight · segments[i]. Set to the party's sample count n_k by the
  // party runner (FedAvg's weighting); a transform may change it (uniform weights under DP).
  double weight = 0;
  std::int64_t samples = 0;  // n_k, the party's shard size (metrics; FedNova's p_k)
  // Δ_k = local − global, float32, one tensor per Segment, on the training device.
  std::vector<torch::Tensor> segments;
  double d_loss = 0, g_loss = 0;  // means over the party's local steps
  std::int64_t steps = 0;         // local steps (one D update·d_steps + one G update each)
  std::int64_t images = 0;        // real images seen
  bool finite = true;             // false: a loss or the model became NaN/inf (never aggregated)
  // ADA's overfitting signal (with --diffaug): Σ sign(D(real)) over the real images D saw.
  double ada_sign_sum = 0, ada_count = 0;
};

// What a round's steps know about the round; the same on every rank.
struct RoundContext {
  int round = 0;
  std::vector<int> participants;  // sorted global party ids drawn for this round
  int total_parties = 0;
  std::uint64_t seed = 0;         // the run's --seed
  // Every party's shard size n_k and planned local steps τ_k, indexed by party id (gathered
  // once per run), for strategies that weigh parties by what other ranks host (FedNova).
  const std::vector<std::int64_t>* party_samples = nullptr;
  const std::vector<std::int64_t>* party_steps = nullptr;
  std::vector<int> hosted = {};  // the participants this rank hosts, ascending
};

// Sums over every rank's contributing parties, formed together with the model aggregate
// (FedAvg carries them in the same buffer as the models).
struct RoundTotals {
  double d_loss = 0, g_loss = 0;  // Σ of the parties' mean losses
  double parties = 0;             // contributing parties
  double images = 0;              // real images seen by every trained party, skipped ones too
  double samples = 0;             // Σ n_k
  double sample_steps = 0;        // Σ n_k · steps_k (FedNova's effective step count)
  double ada_sign_sum = 0, ada_count = 0;  // ADA: Σ sign(D(real)) and the real images counted
  static constexpr int kSlots = 8;
  void to(double* slots) const;
  void from(const double* slots);
};

// The aggregate every rank holds after Aggregator::finish: the same values on every rank.
struct AggregateResult {
  // Per Segment, float64: the aggregate's numerator (Σ weight·Δ for FedAvg; the robust value
  // itself, with denominator 1, for rules that do not average).
  std::vector<torch::Tensor> sums;
  double total_weight = 0;  // Σ weight of the contributing updates
  double denominator = 0;   // what `sums` is divided by; total_weight unless a hook sets it
  RoundTotals totals;       // summed over ranks
  // Apply the server step even when no party contributed (DP: a round's release must not show
  // whether anyone took part, so its noise is applied all the same).
  bool apply_when_empty = false;
  // Non-empty: the aggregator abandoned the round (why, e.g. too few parties survived secure
  // aggregation's masking); totals.parties is then 0 and the model must not change.
  std::string abandoned;
  // sums[segment] / denominator as float32 (the server step's input). Requires denominator > 0.
  torch::Tensor mean(std::size_t segment) const;
};

}  // namespace fedgan::federated
