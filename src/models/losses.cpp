// GAN losses (see include/fedgan/models/losses.hpp).
#include "fedgan/models/losses.hpp"

#include "fedgan/core/error.hpp"

namespace fedgan::models {
namespace {

namespace F = torch::nn::functional;

class BceLoss final : public GanLoss {
 public:
  std::string name() const override { return "bce"; }
  // -log σ(D(x)) - log(1 - σ(D(G(z)))) written with softplus for stability.
  torch::Tensor d_loss(const torch::Tensor& r, const torch::Tensor& f) const override {
    return F::softplus(-r).mean() + F::softplus(f).mean();
  }
  // Non-saturating generator loss: -log σ(D(G(z))).
  torch::Tensor g_loss(const torch::Tensor& f) const override { return F::softplus(-f).mean(); }
};

class HingeLoss final : public GanLoss {
 public:
  std::string name() const override { return "hinge"; }
  torch::Tensor d_loss(const torch::Tensor& r, const torch::Tensor& f) const override {
    return torch::relu(1.0 - r).mean() + torch::relu(1.0 + f).mean();
  }
  torch::Tensor g_loss(const torch::Tensor& f) const override { return -f.mean(); }
};

class WganGpLoss final : public GanLoss {
 public:
  explicit WganGpLoss(double weight) : m_weight(weight) {}
  std::string name() const override { return "wgan-gp"; }
  torch::Tensor d_loss(const torch::Tensor& r, const torch::Tensor& f) const override {
    return f.mean() - r.mean();
  }
  torch::Tensor g_loss(const torch::Tensor& f) const override { return -f.mean(); }
  double gradient_penalty_weight() const override { return m_weight; }

 private:
  double m_weight;
};

}  // namespace

std::unique_ptr<GanLoss> make_loss(const std::string& name, double gp_weight) {
  if (name == "bce") return std::make_unique<BceLoss>();
  if (name == "hinge") return std::make_unique<HingeLoss>();
  if (name == "wgan-gp") {
    require(gp_weight > 0, "loss: gp_weight must be positive for wgan-gp");
    return std::make_unique<WganGpLoss>(gp_weight);
  }
  throw Error("loss: unknown loss '" + name + "' (expected bce, hinge or wgan-gp)");
}

torch::Tensor gradient_penalty(Discriminator& d, const torch::Tensor& real,
                               const torch::Tensor& fake, const torch::Tensor& labels,
                               torch::Generator& gen) {
  auto eps = torch::rand({real.size(0), 1, 1, 1}, gen, real.options());
  auto mixed = (eps * real + (1 - eps) * fake.detach()).requires_grad_(true);
  auto out = d.forward(mixed, labels);
  auto grads = torch::autograd::grad({out.sum()}, {mixed}, {}, /*retain_graph=*/true,
                                     /*create_graph=*/true)[0];
  return (grads.flatten(1).norm(2, 1) - 1).pow(2).mean();
}

torch::Tensor r1_penalty(const torch::Tensor& real_logits, const torch::Tensor& real_inputs) {
  auto grads = torch::autograd::grad({real_logits.sum()}, {real_inputs}, {}, /*retain_graph=*/true,
                                     /*create_graph=*/true)[0];
  return grads.pow(2).flatten(1).sum(1).mean();
}

}  // namespace fedgan::models
