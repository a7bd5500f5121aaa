// Cross-domain correspondence (Ojha et al., CVPR 2021, "Few-shot Image Generation via
// Cross-domain Correspondence"): the source generator as a frozen teacher. For a batch of
// latents, each image's similarities to the others (cosine, of a hidden block's activations)
// form a distribution over the others (softmax); the adapted G's loss gains
// λ · Σ_layers mean_i KL(p_source,i ‖ p_adapted,i), so the adapted G keeps the source's
// relative distances between images — its diversity — while its domain moves.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "fedgan/models/gan.hpp"
#include "fedgan/train/regularizer.hpp"

namespace fedgan::transfer {

// Σ over layers l of mean over anchors i of KL(softmax_j≠i cos(t_i, t_j) ‖ softmax_j≠i
// cos(s_i, s_j)), s and t [B, ...] per layer (B ≥ 2); 0 exactly when they agree.
torch::Tensor cdc_loss(const std::vector<torch::Tensor>& student,
                       const std::vector<torch::Tensor>& teacher);

class CdcRegularizer final : public train::Regularizer {
 public:
  // `source` frozen (no gradients), on the training device; `weight` λ > 0.
  CdcRegularizer(std::shared_ptr<models::Generator> source, double weight);
  bool wants_g_features() const override { return true; }
  torch::Tensor g_loss_term(const torch::Tensor& z, const torch::Tensor& labels,
                            const torch::Tensor& fake,
                            const std::vector<torch::Tensor>& features) override;

 private:
  std::shared_ptr<models::Generator> m_source;
  double m_weight;
};

}  // namespace fedgan::transfer
