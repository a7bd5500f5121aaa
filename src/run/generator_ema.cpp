// The server-side generator EMA (see include/fedgan/run/generator_ema.hpp).
#include "fedgan/run/generator_ema.hpp"

#include <algorithm>
#include <string>

#include "fedgan/core/error.hpp"

namespace fedgan::run {

GeneratorEma::GeneratorEma(double beta, const torch::Tensor& global_values,
                           std::int64_t parameter_numel)
    : m_beta(beta), m_parameter_numel(parameter_numel) {
  require(beta > 0 && beta < 1, "--g-ema must be in (0, 1)");
  require(parameter_numel >= 0 && parameter_numel <= global_values.numel(),
          "GeneratorEma: parameter count exceeds the buffer");
  m_values = global_values.detach().clone();
}

double GeneratorEma::beta_at(int round) const {
  const double t = std::max(1, round);
  return std::min(m_beta, (1.0 + t) / (10.0 + t));
}

void GeneratorEma::update(const torch::Tensor& global_values, int round) {
  require(global_values.numel() == m_values.numel(), "GeneratorEma: the generator changed size");
  torch::NoGradGuard no_grad;
  const auto g = global_values.detach();
  const double b = beta_at(round);
  m_values.narrow(0, 0, m_parameter_numel).mul_(b).add_(g.narrow(0, 0, m_parameter_numel), 1.0 - b);
  const auto rest = m_values.numel() - m_parameter_numel;
  if (rest > 0)
    m_values.narrow(0, m_parameter_numel, rest).copy_(g.narrow(0, m_parameter_numel, rest));
}

void GeneratorEma::load(const torch::Tensor& values) {
  require(values.numel() == m_values.numel(), "generator EMA: expected " +
                                                  std::to_string(m_values.numel()) +
                                                  " values, got " + std::to_string(values.numel()));
  torch::NoGradGuard no_grad;
  m_values.copy_(values.reshape({m_values.numel()}));
}

}  // namespace fedgan::run
