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

// Where each segment lies when the segments are laid end to end in one flat vector, and the two
// directions: an update's segments into one flat tensor, a flat tensor back into one view per
// segment. Every aggregator holds its values this way (FedAvg's float64 buffer, the robust rules'
// and secure aggregation's flat copies); this is the one place that computes the offsets.
class SegmentLayout {
 public:
  explicit SegmentLayout(std::vector<std::int64_t> sizes);
  std::size_t segments() const { return m_sizes.size(); }
  std::int64_t size(std::size_t segment) const { return m_sizes.at(segment); }
  const std::vector<std::int64_t>& sizes() const { return m_sizes; }
  std::int64_t numel() const { return m_numel; }
  // Requires one tensor per segment with that segment's number of values (fedgan::Error).
  void check(const std::vector<torch::Tensor>& segments) const;
  // The segments end to end in one new contiguous float32 tensor on the CPU.
  torch::Tensor flatten(const std::vector<torch::Tensor>& segments) const;
  // One view of `flat` (numel() values) per segment, in order.
  std::vector<torch::Tensor> split(const torch::Tensor& flat) const;

 private:
  std::vector<std::int64_t> m_sizes, m_offsets;
  std::int64_t m_numel = 0;
};

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
  // Width level of the party (federated/round/width_levels.hpp; 0 without widths): which
  // coordinates its segments hold (the others are 0 and not its to average).
  int level = 0;
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

// Sums over every rank's parties, formed together with the model aggregate (FedAvg carries
// them in the same buffer as the models). Two kinds of field: what a party's local training
// saw (images, ADA's signal), which counts for every party that trained with finite values, and
// what only an aggregated update contributes (its losses, the party itself, n_k, n_k·τ_k).
struct RoundTotals {
  double d_loss = 0, g_loss = 0;  // Σ of the parties' mean losses
  double parties = 0;             // contributing parties
  double images = 0;              // real images seen by every trained party, skipped ones too
  double samples = 0;             // Σ n_k
  double sample_steps = 0;        // Σ n_k · steps_k (FedNova's effective step count)
  double ada_sign_sum = 0, ada_count = 0;  // ADA: Σ sign(D(real)) and the real images counted
  // What `update` adds when it is aggregated: every field.
  static RoundTotals of(const Update& update);
  // Only the local training's fields (images, ADA's signal); the contribution's are 0. What a
  // finite update adds when it never reaches the aggregate, and what an abandoned round sums.
  RoundTotals training_only() const;
  RoundTotals& operator+=(const RoundTotals& other);
  // As float64 slots, in the order of the fields (how the totals travel in an allreduce).
  static constexpr std::size_t kSlots = 8;
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
  // Width levels only: per Segment, float64, Σ weight of the updates that hold each coordinate;
  // mean() divides by it instead of `denominator` (0: nobody held it, the mean is 0 there, so
  // the coordinate stays unchanged). Empty otherwise.
  std::vector<torch::Tensor> coordinate_weight;
  RoundTotals totals;       // summed over ranks
  // Apply the server step even when no party contributed (DP: a round's release must not show
  // whether anyone took part, so its noise is applied all the same).
  bool apply_when_empty = false;
  // Non-empty: the aggregator abandoned the round (why, e.g. too few parties survived secure
  // aggregation's masking); totals.parties is then 0 and the model must not change.
  std::string abandoned;
  // sums[segment] / denominator as float32 (the server step's input), or per coordinate over
  // coordinate_weight. Requires denominator > 0.
  torch::Tensor mean(std::size_t segment) const;
};

}  // namespace fedgan::federated
