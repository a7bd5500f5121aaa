// Elastic weight consolidation (see include/fedgan/transfer/ewc.hpp).
#include "fedgan/transfer/ewc.hpp"

#include <cmath>
#include <string>

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"

namespace fedgan::transfer {

torch::Tensor diagonal_fisher(const std::function<torch::Tensor(int)>& loss, torch::Tensor& grad,
                              int n) {
  require(n > 0, "fisher: the number of samples must be positive");
  auto sum = torch::zeros(grad.sizes(), grad.options().dtype(torch::kFloat64));
  for (int i = 0; i < n; ++i) {
    grad.zero_();
    loss(i).backward();
    sum.add_(grad.to(torch::kFloat64).square());
  }
  grad.zero_();
  return (sum / n).to(grad.scalar_type());
}

torch::Tensor generator_fisher(models::Gan& source, int samples, std::uint64_t seed) {
  require(samples > 0, "--ewc-samples must be positive");
  source.train(false);
  const auto& cfg = source.config();
  auto gen = compat::make_cpu_generator(seed);
  const auto device = source.device();
  std::vector<bool> had;
  for (auto& p : source.generator().parameters()) {
    had.push_back(p.requires_grad());
    p.requires_grad_(true);
  }
  const auto loss = [&](int) {
    const auto z = torch::randn({1, cfg.latent_dim}, gen).to(device);
    torch::Tensor labels;
    if (cfg.num_classes > 0) labels = torch::randint(cfg.num_classes, {1}, gen).to(device);
    const auto logits = source.discriminator().forward(source.generator().forward(z, labels),
                                                       labels);
    return torch::softplus(-logits).sum();
  };
  auto fisher = diagonal_fisher(loss, source.g_grad(), samples);
  std::size_t i = 0;
  for (auto& p : source.generator().parameters()) p.requires_grad_(had[i++]);
  source.g_grad().zero_();
  source.d_grad().zero_();
  return fisher;
}

torch::Tensor normalised_fisher(const torch::Tensor& fisher) {
  const double mean = fisher.to(torch::kFloat64).mean().item<double>();
  require(std::isfinite(mean) && mean > 0,
          "--ewc-weight: the source generator's Fisher information is " +
              std::string(std::isfinite(mean) ? "zero" : "not finite") +
              " (a saturated or broken source discriminator?)");
  return fisher / mean;
}

EwcRegularizer::EwcRegularizer(const torch::Tensor& fisher, torch::Tensor source, double weight)
    : m_source(std::move(source)), m_weight(weight) {
  require(weight >= 0 && std::isfinite(weight), "--ewc-weight must be >= 0");
  require(fisher.numel() == m_source.numel(),
          "ewc: the Fisher information has " + std::to_string(fisher.numel()) +
              " values, the source generator " + std::to_string(m_source.numel()));
  m_scale = normalised_fisher(fisher).mul(2 * weight).to(m_source.options());
}

void EwcRegularizer::before_step(train::Net net, const torch::Tensor& params,
                                 torch::Tensor& grad) {
  if (net != train::Net::Generator || m_weight == 0) return;
  require(params.numel() == m_source.numel(),
          "ewc: the generator being trained is not the source's shape");
  grad.narrow(0, 0, params.numel()).addcmul_(m_scale, params - m_source);
}

double EwcRegularizer::penalty(const torch::Tensor& params) const {
  const auto d = (params - m_source).to(torch::kFloat64);
  return 0.5 * (m_scale.to(torch::kFloat64) * d * d).sum().item<double>();
}

}  // namespace fedgan::transfer
