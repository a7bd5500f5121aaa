// Knowledge distillation from a frozen teacher generator (the pretrained one) as a local
// training regulariser: G's loss gains kd_weight · kd_decay^(round-1) · mean((G(z) - T(z))²)
// on the same latent vectors and labels.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "fedgan/models/gan.hpp"
#include "fedgan/train/regularizer.hpp"

namespace fedgan::transfer {

// The distillation loss between a student's and a teacher's outputs on the same inputs:
// mean squared difference (0 exactly when they agree).
torch::Tensor kd_loss(const torch::Tensor& student, const torch::Tensor& teacher);

class KdRegularizer final : public train::Regularizer {
 public:
  // `teacher` must be frozen (no gradients) and on the training device.
  KdRegularizer(std::shared_ptr<models::Generator> teacher, double weight, double decay);
  void begin_party(const train::PartyStart& start) override;
  torch::Tensor g_loss_term(const torch::Tensor& z, const torch::Tensor& labels,
                            const torch::Tensor& fake,
                            const std::vector<torch::Tensor>& features) override;

 private:
  std::shared_ptr<models::Generator> m_teacher;
  double m_weight, m_decay, m_now;
};

}  // namespace fedgan::transfer
