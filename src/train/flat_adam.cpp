// FlatAdam (see include/fedgan/train/flat_adam.hpp).
#include "fedgan/train/flat_adam.hpp"

#include "fedgan/core/error.hpp"

#include <cmath>

namespace fedgan::train {

FlatAdam::FlatAdam(torch::Tensor params, torch::Tensor grads, AdamOptions options)
    : m_params(std::move(params)), m_grads(std::move(grads)), m_options(options) {
  require(m_params.numel() == m_grads.numel(), "FlatAdam: parameters and gradients differ in size");
  reset();
}

void FlatAdam::reset() {
  m_m = torch::zeros_like(m_params);
  m_v = torch::zeros_like(m_params);
  m_step = 0;
}

void FlatAdam::set_lr_scale(torch::Tensor scale) {
  require(!scale.defined() || scale.numel() == m_params.numel(),
          "FlatAdam: lr scale has the wrong size");
  m_scale = std::move(scale);
}

void FlatAdam::step() {
  torch::NoGradGuard no_grad;
  ++m_step;
  const double b1 = m_options.beta1, b2 = m_options.beta2;
  const double bias1 = 1 - std::pow(b1, static_cast<double>(m_step));
  const double bias2 = 1 - std::pow(b2, static_cast<double>(m_step));
  // Same order of operations as torch::optim::Adam (1.13), element by element.
  m_m.mul_(b1).add_(m_grads, 1 - b1);
  m_v.mul_(b2).addcmul_(m_grads, m_grads, 1 - b2);
  auto denom = (m_v.sqrt() / std::sqrt(bias2)).add_(m_options.eps);
  const double step_size = m_options.lr / bias1;
  if (m_scale.defined()) {
    m_params.addcdiv_(m_m * m_scale, denom, -step_size);
  } else {
    m_params.addcdiv_(m_m, denom, -step_size);
  }
}

}  // namespace fedgan::train
