// GAN objectives by name: non-saturating BCE (Goodfellow et al. 2014), hinge (Lim & Ye 2017),
// WGAN-GP (Gulrajani et al. 2017). All take raw logits.
#pragma once

#include "fedgan/core/choice.hpp"
#include "fedgan/models/gan.hpp"

#include <torch/torch.h>

#include <memory>
#include <string>

namespace fedgan::models {

class GanLoss {
 public:
  virtual ~GanLoss() = default;
  virtual std::string name() const = 0;
  virtual torch::Tensor d_loss(const torch::Tensor& real_logits,
                               const torch::Tensor& fake_logits) const = 0;
  virtual torch::Tensor g_loss(const torch::Tensor& fake_logits) const = 0;
  // WGAN-GP adds a gradient penalty to D's loss.
  virtual double gradient_penalty_weight() const { return 0.0; }
};

enum class LossKind { Bce, Hinge, WganGp };

// --loss: bce (default), hinge, wgan-gp, each with its factory (gp_weight used only by wgan-gp).
struct LossChoice {
  LossKind value;
  const char* name;
  const char* help;
  std::unique_ptr<GanLoss> (*make)(double gp_weight);
};
const ChoiceTable<LossChoice>& losses();
LossKind parse_loss(const std::string& name);  // fedgan::Error naming --loss for an unknown name
std::string to_string(LossKind kind);

std::unique_ptr<GanLoss> make_loss(LossKind kind, double gp_weight = 10.0);

// E[(||∇_x̂ D(x̂)||₂ − 1)²] on random interpolates x̂ of real and fake (Gulrajani et al., eq. 3).
torch::Tensor gradient_penalty(Discriminator& d, const torch::Tensor& real,
                               const torch::Tensor& fake, const torch::Tensor& labels,
                               torch::Generator& gen);

// R1 (Mescheder et al. 2018, eq. 9 without γ/2): E[||∇_x D(x)||²] over real images, from the
// logits D gave `real_inputs` (which must require grad). Differentiable (create_graph), so the
// penalty trains D; fedgan's D step adds γ/2 times it.
torch::Tensor r1_penalty(const torch::Tensor& real_logits, const torch::Tensor& real_inputs);

}  // namespace fedgan::models
