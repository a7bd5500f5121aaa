// The feedback of federated distillation, combined as UA-GAN does (Zhang et al. 2021, "Training
// Federated GANs with Theoretical Guarantees: A Universal Aggregation Approach", eq. 3): the
// parties' discriminators D_j are merged into one D_ua through their odds,
//   D_ua/(1 − D_ua) = Σ_j π_j D_j/(1 − D_j),   π_j = n_j / Σ_i n_i (the step's participants),
// which in logits s_j (D_j = σ(s_j), odds e^{s_j}) is  ℓ_ua = log Σ_j π_j e^{s_j}  (a weighted
// logsumexp). G's loss is the non-saturating BCE on ℓ_ua, so the gradient on a generated image
// x is  ∂L/∂x = Σ_j c_j · ∂s_j/∂x  with the cotangent c_j = ∂L/∂ℓ_ua ⊙ w_j and
// w_j = π_j e^{s_j} / Σ_i π_i e^{s_i} (softmax over the parties, per image).
//
// A step crosses ranks twice: one float64 allreduce of every participant's logits (its slot
// written by the rank hosting it, zeros elsewhere, so the sum is exact), after which every rank
// computes the same ℓ_ua, w and c; then one float64 allreduce of the hosted parties' image
// feedback Σ_j c_j·∂s_j/∂x (order-independent up to ~1e-16 relative: R ranks = 1 rank).
// With norm bounding (--aggregator norm-bound) each party's feedback f_j is first scaled by
// min(1, b/‖f_j‖), b the median of the step's ‖f_j‖ over the participants (one more float64
// allreduce of m norms), as the norm-bound rule does to model updates: one party's outsized
// feedback cannot move G more than a typical party's.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/federated/distill/distill_config.hpp"

namespace fedgan::federated {

// The combination of m parties' logits on one batch of B images (every rank alike): what G's
// loss is, and each party's cotangent of its logits.
struct FeedbackCombination {
  torch::Tensor logits;      // [B] float64: ℓ_ua (mean: Σ_j π_j s_j, for the record only)
  torch::Tensor weights;     // [m, B] float64: w_j per image, each column sums to 1 (mean: π_j)
  torch::Tensor dloss;       // [B] float64: ∂L/∂ℓ_ua, L = mean_i softplus(−ℓ_ua,i)
  torch::Tensor cotangents;  // [m, B] float64: c_j = dloss ⊙ w_j (mean: π_j ∂L_j/∂s_j)
  double g_loss = 0;         // L
};
// UA-GAN. `party_logits` [m, B], `pi` [m] (positive, any scale: normalised here); float64.
FeedbackCombination ua_combine(const torch::Tensor& party_logits, const torch::Tensor& pi);
// MD-GAN's averaged error feedback (Hardy et al. 2019), for comparison: L = Σ_j π_j L_j with
// L_j = mean_i softplus(−s_j,i) each party's own non-saturating loss, so c_j = π_j ∂L_j/∂s_j.
FeedbackCombination mean_combine(const torch::Tensor& party_logits, const torch::Tensor& pi);

// Party j's image feedback: the vector–Jacobian product c_j·∂s_j/∂x of its logits (with their
// graph to `images`, which require grad) — exact also for a D whose logits couple the images of
// a batch (BatchNorm in training mode).
torch::Tensor party_feedback(const torch::Tensor& logits, const torch::Tensor& images,
                             const torch::Tensor& cotangent);

// One generated batch's feedback exchange across ranks (the two collectives above).
class FeedbackAggregator {
 public:
  // n_k of every party, by party id: the weights π; `bound_norms`: norm bounding.
  explicit FeedbackAggregator(std::vector<std::int64_t> party_samples, bool bound_norms = false,
                              FeedbackCombine combine = FeedbackCombine::Ua);

  // A new step: the participants (sorted ids, the same on every rank) and the batch size.
  void begin_step(const std::vector<int>& participants, std::int64_t batch);
  // A hosted participant's logits on the generated batch ([B]) and its D loss of the step.
  void add_logits(int party, const torch::Tensor& logits, double d_loss);
  // This rank was asked to stop (preemption): every rank learns it from the logits' collective.
  void set_stop() { m_stop = true; }

  struct LogitsOutcome {
    bool stop = false;         // some rank was asked to stop: abandon the round
    int nonfinite_party = -1;  // the lowest participant with a NaN/inf logit or D loss
    FeedbackCombination ua;    // valid when neither
    double d_loss_sum = 0;     // Σ over participants of their D losses of the step
  };
  // Collective: one allreduce_sum of [m·B logits | m D losses | stop count] in float64.
  LogitsOutcome reduce_logits(comm::Communicator& comm);
  // A participant's cotangent (float32 [B]) after reduce_logits.
  torch::Tensor cotangent(int party) const;
  // A hosted participant's image feedback, summed in float64.
  void add_feedback(int party, const torch::Tensor& feedback);
  // Collective: the float64 sum over ranks, as float32 images [B, C, H, W] of `shape` (with
  // norm bounding first the allreduce of the norms, then each feedback scaled to the bound).
  torch::Tensor reduce_feedback(comm::Communicator& comm, const std::vector<std::int64_t>& shape);
  // Norm bounding: the step's bound and how many parties' feedback it scaled down.
  double last_bound() const { return m_bound; }
  std::int64_t last_clipped() const { return m_clipped; }

 private:
  std::vector<std::int64_t> m_party_samples;
  std::vector<int> m_participants;
  std::map<int, std::size_t> m_slot;  // party id → its row among the participants
  std::int64_t m_batch = 0;
  torch::Tensor m_buffer;               // [m·B + m + 1] float64
  torch::Tensor m_cotangents;           // [m, B] after reduce_logits
  torch::Tensor m_feedback;             // float64 sum of this rank's feedback
  std::map<int, torch::Tensor> m_held;  // norm bounding: each hosted party's feedback (float64)
  bool m_bound_norms = false;
  FeedbackCombine m_combine = FeedbackCombine::Ua;
  double m_bound = 0;
  std::int64_t m_clipped = 0;
  bool m_stop = false;
};

}  // namespace fedgan::federated
