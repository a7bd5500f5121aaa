// Cross-domain correspondence (see include/fedgan/transfer/cdc.hpp).
#include "fedgan/transfer/cdc.hpp"

#include <cmath>
#include <string>

#include "fedgan/core/error.hpp"

namespace fedgan::transfer {

namespace {

// [B, B-1]: row i holds cos(x_i, x_j) for j ≠ i, in order of j.
torch::Tensor cdc_off_diagonal_similarity(const torch::Tensor& x) {
  const auto b = x.size(0);
  const auto unit = torch::nn::functional::normalize(
      x.reshape({b, -1}).to(torch::kFloat32),
      torch::nn::functional::NormalizeFuncOptions().dim(1).eps(1e-8));
  const auto sim = unit.matmul(unit.t());
  const auto keep = torch::ones({b, b}, torch::TensorOptions().dtype(torch::kBool).device(x.device()))
                        .logical_xor(torch::eye(b, torch::TensorOptions().dtype(torch::kBool).device(x.device())));
  return sim.masked_select(keep).view({b, b - 1});
}

}  // namespace

torch::Tensor cdc_loss(const std::vector<torch::Tensor>& student,
                       const std::vector<torch::Tensor>& teacher) {
  require(!student.empty() && student.size() == teacher.size(),
          "cdc: the adapted and source generators expose " + std::to_string(student.size()) +
              " and " + std::to_string(teacher.size()) + " hidden blocks");
  torch::Tensor total;
  for (std::size_t l = 0; l < student.size(); ++l) {
    const auto& s = student[l];
    const auto& t = teacher[l];
    require(s.size(0) >= 2 && s.size(0) == t.size(0) && s.numel() == t.numel(),
            "cdc: block " + std::to_string(l) + " activations of the adapted and source "
            "generators differ in shape (or the batch holds fewer than 2 images)");
    const auto log_p_s = torch::log_softmax(cdc_off_diagonal_similarity(s), 1);
    const auto log_p_t = torch::log_softmax(cdc_off_diagonal_similarity(t), 1);
    const auto kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean();
    total = total.defined() ? total + kl : kl;
  }
  return total;
}

CdcRegularizer::CdcRegularizer(std::shared_ptr<models::Generator> source, double weight)
    : m_source(std::move(source)), m_weight(weight) {
  require(m_source != nullptr, "cdc: no source generator");
  require(weight > 0 && std::isfinite(weight), "--cdc-weight must be > 0");
}

torch::Tensor CdcRegularizer::g_loss_term(const torch::Tensor& z, const torch::Tensor& labels,
                                          const torch::Tensor& /*fake*/,
                                          const std::vector<torch::Tensor>& features) {
  if (z.size(0) < 2) return {};
  std::vector<torch::Tensor> source;
  {
    torch::NoGradGuard no_grad;
    m_source->forward_features(z, labels, source);
  }
  return m_weight * cdc_loss(features, source);
}

}  // namespace fedgan::transfer
