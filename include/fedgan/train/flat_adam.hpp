// FlatAdam: Adam (Kingma & Ba 2015) over one flat parameter buffer and its flat gradient.
// The same arithmetic as torch::optim::Adam, done as a handful of fused ops on the whole
// model; its state is two flat tensors and a step count, so it saves and restores trivially.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace fedgan::train {

struct AdamOptions {
  double lr = 2e-4;
  double beta1 = 0.5;
  double beta2 = 0.999;
  double eps = 1e-8;
};

class FlatAdam {
 public:
  FlatAdam() = default;
  // `params` and `grads` are flat views of equal length (e.g. FlatParameters::parameters_view()
  // and the Gan's flat gradient).
  FlatAdam(torch::Tensor params, torch::Tensor grads, AdamOptions options);

  void step();
  void reset();  // forget moments and step count
  // Per-element learning-rate multiplier (0 freezes an element); undefined = all ones.
  void set_lr_scale(torch::Tensor scale);
  // The learning rate from the next step on (a schedule over rounds); moments are kept.
  void set_lr(double lr) { m_options.lr = lr; }

  const AdamOptions& options() const { return m_options; }
  std::int64_t step_count() const { return m_step; }
  torch::Tensor& exp_avg() { return m_m; }
  torch::Tensor& exp_avg_sq() { return m_v; }
  const torch::Tensor& exp_avg() const { return m_m; }
  const torch::Tensor& exp_avg_sq() const { return m_v; }
  void set_step_count(std::int64_t step) { m_step = step; }

 private:
  torch::Tensor m_params, m_grads, m_m, m_v, m_scale;
  AdamOptions m_options;
  std::int64_t m_step = 0;
};

}  // namespace fedgan::train
