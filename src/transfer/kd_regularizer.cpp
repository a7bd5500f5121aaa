// Knowledge distillation as a regulariser (see include/fedgan/transfer/kd_regularizer.hpp).
#include "fedgan/transfer/kd_regularizer.hpp"

#include <algorithm>
#include <cmath>

#include "fedgan/core/error.hpp"

namespace fedgan::transfer {

torch::Tensor kd_loss(const torch::Tensor& student, const torch::Tensor& teacher) {
  return (student - teacher).pow(2).mean();
}

KdRegularizer::KdRegularizer(std::shared_ptr<models::Generator> teacher, double weight,
                             double decay)
    : m_teacher(std::move(teacher)), m_weight(weight), m_decay(decay), m_now(weight) {
  require(m_teacher != nullptr, "distillation: no teacher generator");
  require(weight >= 0 && decay > 0 && decay <= 1,
          "distillation: kd_weight must be >= 0 and kd_decay in (0, 1]");
}

void KdRegularizer::begin_party(const train::PartyStart& start) {
  m_now = m_weight * std::pow(m_decay, std::max(0, start.round - 1));
}

torch::Tensor KdRegularizer::g_loss_term(const torch::Tensor& z, const torch::Tensor& labels,
                                         const torch::Tensor& fake,
                                         const std::vector<torch::Tensor>& /*features*/) {
  if (m_now <= 0) return {};
  torch::Tensor target;
  {
    torch::NoGradGuard no_grad;
    target = m_teacher->forward(z, labels);
  }
  return m_now * kd_loss(fake, target);
}

}  // namespace fedgan::transfer
