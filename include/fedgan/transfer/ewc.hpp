// Elastic weight consolidation for GANs (Li et al., NeurIPS 2020, "Few-shot Image Generation
// with Elastic Weight Consolidation"): the diagonal Fisher information F of the source
// generator's parameters, computed once (rank 0) from the source G and D, and a penalty
// λ · Σ F̂ (θ − θ_source)² on every party's G step, F̂ = F / mean(F).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>

#include "fedgan/models/gan.hpp"
#include "fedgan/train/regularizer.hpp"

namespace fedgan::transfer {

struct EwcConfig {
  double weight = 0;   // λ (--ewc-weight); 0: off
  int samples = 256;   // latents of the Fisher estimate (--ewc-samples)
};

// The empirical diagonal Fisher: mean over i < n of g_i ⊙ g_i, g_i the gradient that
// loss(i).backward() leaves in `grad` (a flat gradient buffer, zeroed before each i).
// float64 sums, returned as float32 like `grad`.
torch::Tensor diagonal_fisher(const std::function<torch::Tensor(int)>& loss, torch::Tensor& grad,
                              int n);

// F of `source`'s generator parameters (its flat parameter layout, buffers excluded): one
// latent at a time (z from a CPU generator seeded `seed`; labels uniform for a conditional
// model), loss_i = softplus(−D(G(z_i))), G's non-saturating loss, both models in eval mode
// (running BatchNorm statistics), as Li et al. (the source D's cross-entropy on generated
// images). `source` is left in eval mode with its gradients zeroed.
torch::Tensor generator_fisher(models::Gan& source, int samples, std::uint64_t seed);

// F / mean(F); fedgan::Error when F is not finite or all zero (a saturated source D).
torch::Tensor normalised_fisher(const torch::Tensor& fisher);

class EwcRegularizer final : public train::Regularizer {
 public:
  // `fisher`: F (normalised here), `source`: θ_source, both [G's parameter numel] on the
  // training device.
  EwcRegularizer(const torch::Tensor& fisher, torch::Tensor source, double weight);
  // G: grad += 2λ F̂ ⊙ (θ − θ_source), the gradient of the penalty (no autograd needed).
  void before_step(train::Net net, const torch::Tensor& params, torch::Tensor& grad) override;
  // λ · Σ F̂ (θ − θ_source)² (for reports and tests).
  double penalty(const torch::Tensor& params) const;

 private:
  torch::Tensor m_scale;  // 2λ F̂
  torch::Tensor m_source;
  double m_weight;
};

}  // namespace fedgan::transfer
