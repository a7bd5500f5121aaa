// GAN losses (see include/fedgan/models/losses.hpp).
#include "fedgan/models/losses.hpp"

#include "fedgan/core/error.hpp"

namespace fedgan::models {
namespace {

namespace F = torch::nn::functional;

class BceLoss final : public GanLoss {
 public:
  std::string name() const override { return to_string(LossKind::Bce); }
  // -log σ(D(x)) - log(1 - σ(D(G(z)))) written with softplus for stability.
  torch::Tensor d_loss(const torch::Tensor& r, const torch::Tensor& f) const override {
    return F::softplus(-r).mean() + F::softplus(f).mean();
  }
  // Non-saturating generator loss: -log σ(D(G(z))).
  torch::Tensor g_loss(const torch::Tensor& f) const override { return F::softplus(-f).mean(); }
};

class HingeLoss final : public GanLoss {
 public:
  std::string name() const override { return to_string(LossKind::Hinge); }
  torch::Tensor d_loss(const torch::Tensor& r, const torch::Tensor& f) const override {
    return torch::relu(1.0 - r).mean() + torch::relu(1.0 + f).mean();
  }
  torch::Tensor g_loss(const torch::Tensor& f) const override { return -f.mean(); }
};

class WganGpLoss final : public GanLoss {
 public:
  explicit WganGpLoss(double weight) : m_weight(weight) {}
  std::string name() const override { return to_string(LossKind::WganGp); }
  torch::Tensor d_loss(const torch::Tensor& r, const torch::Tensor& f) const override {
    return f.mean() - r.mean();
  }
  torch::Tensor g_loss(const torch::Tensor& f) const override { return -f.mean(); }
  double gradient_penalty_weight() const override { return m_weight; }

 private:
  double m_weight;
};

const LossChoice kLossChoices[] = {
    {LossKind::Bce, "bce", "non-saturating, Goodfellow et al. 2014",
     [](double) -> std::unique_ptr<GanLoss> { return std::make_unique<BceLoss>(); }},
    {LossKind::Hinge, "hinge", "Lim & Ye 2017",
     [](double) -> std::unique_ptr<GanLoss> { return std::make_unique<HingeLoss>(); }},
    {LossKind::WganGp, "wgan-gp", "Gulrajani et al. 2017, with --gp-weight",
     [](double gp_weight) -> std::unique_ptr<GanLoss> {
       require(gp_weight > 0, "loss: gp_weight must be positive for wgan-gp");
       return std::make_unique<WganGpLoss>(gp_weight);
     }},
};

}  // namespace

const ChoiceTable<LossChoice>& losses() {
  static const ChoiceTable<LossChoice> table(kLossChoices, "--loss", "loss");
  return table;
}

LossKind parse_loss(const std::string& name) { return losses().parse(name).value; }
std::string to_string(LossKind kind) { return losses().name(kind); }

std::unique_ptr<GanLoss> make_loss(LossKind kind, double gp_weight) {
  return losses().of(kind).make(gp_weight);
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
