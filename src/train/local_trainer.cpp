// Local GAN training of one party (see include/fedgan/train/local_trainer.hpp).
#include "fedgan/train/local_trainer.hpp"

#include <cmath>

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"

namespace fedgan::train {
namespace {

void set_requires_grad(torch::nn::Module& m, bool on) {
  for (auto& p : m.parameters()) p.requires_grad_(on);
}

}  // namespace

const ChoiceTable<Choice<bool>>& g_fake_choices() {
  static const Choice<bool> entries[] = {
      {false, "fresh", "a new G(z); slightly better FID per round"},
      {true, "reuse",
       "the D step's, as pytorch/examples' dcgan: one G forward fewer per step; the default, "
       "chosen by FID per second"},
  };
  static const ChoiceTable<Choice<bool>> table(entries, "--g-fake", "fake batch");
  return table;
}

PartyOptimizers make_party_optimizers(models::Gan& local, const LocalTrainConfig& c) {
  return {FlatAdam(local.g_flat().parameters_view(), local.g_grad(),
                   AdamOptions{c.lr_g, c.beta1, c.beta2, 1e-8}),
          FlatAdam(local.d_flat().parameters_view(), local.d_grad(),
                   AdamOptions{c.lr_d, c.beta1, c.beta2, 1e-8})};
}

void LocalTrainer::set_augment_probability(double p) {
  require(p >= 0 && p <= 1, "train: augmentation probability must be in [0, 1]");
  m_augment_p = p;
}

torch::Tensor LocalTrainer::d_logits(models::Discriminator& d, const torch::Tensor& images,
                                     const torch::Tensor& labels, torch::Generator& gen) {
  if (!m_config.augment.any()) return d.forward(images, labels);
  return d.forward(augment(images, m_config.augment, m_augment_p, gen), labels);
}

LocalTrainer::LocalTrainer(LocalTrainConfig config)
    : m_config(std::move(config)), m_loss(models::make_loss(m_config.loss, m_config.gp_weight)) {
  require(m_config.batch_size >= 1, "train: batch_size must be >= 1");
  require(m_config.d_steps >= 1, "train: d_steps must be >= 1");
  require(m_config.local_epochs >= 1 || m_config.local_steps >= 1,
          "train: local_epochs or local_steps must be >= 1");
  require(m_config.kd_weight >= 0 && m_config.kd_decay > 0 && m_config.kd_decay <= 1,
          "train: kd_weight must be >= 0 and kd_decay in (0, 1]");
  require(m_config.r1_gamma >= 0 && m_config.r1_every >= 1,
          "train: r1_gamma must be >= 0 and r1_every >= 1");
  require(m_config.lr_final_ratio > 0 && m_config.lr_final_ratio <= 1,
          "train: lr_final_ratio must be in (0, 1]");
}

void LocalTrainer::add_regularizer(std::shared_ptr<Regularizer> regularizer) {
  require(regularizer != nullptr, "train: null regularizer");
  m_g_features = m_g_features || regularizer->wants_g_features();
  m_regularizers.push_back(std::move(regularizer));
}

void LocalTrainer::begin_party(const PartyStart& start) {
  m_lr_factor = lr_factor(m_config.lr_schedule, start.round, m_config.schedule_rounds,
                          m_config.lr_final_ratio);
  for (auto& r : m_regularizers) r->begin_party(start);
}

void LocalTrainer::optimizer_step(Net net, models::Gan& gan, FlatAdam& opt) {
  const bool g = net == Net::Generator;
  if (m_regularizers.empty()) {
    opt.step();
    return;
  }
  const auto params = g ? gan.g_flat().parameters_view() : gan.d_flat().parameters_view();
  auto& grad = g ? gan.g_grad() : gan.d_grad();
  for (auto& r : m_regularizers) r->before_step(net, params, grad);
  opt.step();
  for (auto& r : m_regularizers) r->after_step(net, params);
}

std::pair<double, double> LocalTrainer::step(models::Gan& gan, PartyOptimizers& opt,
                                             const data::Batch& batch, torch::Generator& gen) {
  auto [d, g] = step_async(gan, opt, batch, gen);
  return {d.item<double>(), g.item<double>()};
}

std::pair<torch::Tensor, torch::Tensor> LocalTrainer::step_async(models::Gan& gan,
                                                                 PartyOptimizers& opt,
                                                                 const data::Batch& batch,
                                                                 torch::Generator& gen) {
  auto& g = gan.generator();
  auto& d = gan.discriminator();
  const auto& cfg = gan.config();
  const std::int64_t b = batch.images.size(0);
  const auto on = torch::TensorOptions().device(batch.images.device());
  // Conditional models: fake images get the real batch's labels.
  const torch::Tensor labels = cfg.num_classes > 0 ? batch.labels : torch::Tensor();
  compat::AutocastGuard autocast(m_config.autocast_bf16 && batch.images.is_cuda(),
                                 torch::kBFloat16);

  torch::Tensor d_total, z, fake;
  std::vector<torch::Tensor> features;  // G's hidden activations, when a regularizer wants them
  const auto g_forward = [&] {
    features.clear();
    return m_g_features ? g.forward_features(z, labels, features) : g.forward(z, labels);
  };
  for (int k = 0; k < m_config.d_steps; ++k) {
    z = torch::randn({b, cfg.latent_dim}, gen, on);
    torch::Tensor fake_in;
    if (m_config.reuse_fake) {
      fake = g_forward();  // keeps its graph for the G step
      fake_in = fake.detach();
    } else {
      torch::NoGradGuard no_grad;
      fake_in = g.forward(z, labels);
    }
    gan.d_grad().zero_();
    // Lazy R1: every r1_every-th D step, on the real images before augmentation (as StyleGAN2-ADA).
    const bool r1_now = m_config.r1_gamma > 0 && m_d_step_index % m_config.r1_every == 0;
    ++m_d_step_index;
    const auto real_in = r1_now ? batch.images.detach().requires_grad_(true) : batch.images;
    const auto real_logits = d_logits(d, real_in, labels, gen);
    auto loss = m_loss->d_loss(real_logits, d_logits(d, fake_in, labels, gen));
    if (m_loss->gradient_penalty_weight() > 0)
      loss = loss + m_loss->gradient_penalty_weight() *
                        models::gradient_penalty(d, batch.images, fake_in, labels, gen);
    if (r1_now)
      loss = loss +
             0.5 * m_config.r1_gamma * m_config.r1_every * models::r1_penalty(real_logits, real_in);
    if (m_config.augment.any()) {
      // ADA's r_t, summed on the device (no host read per step).
      const auto signs = real_logits.detach().sign().sum().to(torch::kFloat64);
      m_sign_sum = m_sign_sum.defined() ? m_sign_sum + signs : signs;
      m_sign_count += b;
    }
    loss.backward();
    optimizer_step(Net::Discriminator, gan, opt.d);
    d_total = k == 0 ? loss.detach() : d_total + loss.detach();
  }

  // G step: gradients flow through D to the images, but D's weights need none.
  set_requires_grad(d, false);
  gan.g_grad().zero_();
  if (!m_config.reuse_fake) {
    z = torch::randn({b, cfg.latent_dim}, gen, on);
    fake = g_forward();
  }
  auto g_loss = m_loss->g_loss(d_logits(d, fake, labels, gen));
  for (auto& r : m_regularizers) {
    const auto term = r->g_loss_term(z, labels, fake, features);
    if (term.defined()) g_loss = g_loss + term;
  }
  g_loss.backward();
  set_requires_grad(d, true);
  optimizer_step(Net::Generator, gan, opt.g);
  return {d_total / m_config.d_steps, g_loss.detach()};
}

LocalResult LocalTrainer::run(models::Gan& gan, PartyOptimizers& opt, data::PartyData& data,
                              std::int64_t epoch_base, torch::Generator& gen,
                              const std::function<bool()>& interrupted, std::int64_t steps) {
  LocalResult result;
  gan.train(true);
  opt.g.set_lr(m_config.lr_g * m_lr_factor);
  opt.d.set_lr(m_config.lr_d * m_lr_factor);
  m_d_step_index = 0;
  m_sign_sum = torch::Tensor();
  m_sign_count = 0;
  const bool on_cpu = gan.device().is_cpu();
  torch::Tensor d_sum, g_sum;  // GPU: float64 sums on the device, read once at the end
  const std::int64_t target_steps = steps > 0 ? steps : m_config.local_steps;
  for (std::int64_t e = 0;; ++e) {
    if (target_steps <= 0 && e >= m_config.local_epochs) break;
    for (const auto& batch : data.epoch(epoch_base + e, m_config.batch_size)) {
      if (interrupted && interrupted()) {
        result.interrupted = true;
        return result;
      }
      auto [dl, gl] = step_async(gan, opt, batch, gen);
      if (on_cpu) {
        const double dv = dl.item<double>(), gv = gl.item<double>();
        if (!std::isfinite(dv) || !std::isfinite(gv)) {
          result.finite = false;
          return result;
        }
        result.d_loss += dv;
        result.g_loss += gv;
      } else {
        d_sum = d_sum.defined() ? d_sum + dl.to(torch::kFloat64) : dl.to(torch::kFloat64);
        g_sum = g_sum.defined() ? g_sum + gl.to(torch::kFloat64) : gl.to(torch::kFloat64);
      }
      result.steps += 1;
      result.images += batch.images.size(0);
      if (target_steps > 0 && result.steps >= target_steps) break;
    }
    if (target_steps > 0 && result.steps >= target_steps) break;
  }
  if (d_sum.defined()) {
    result.d_loss = d_sum.item<double>();
    result.g_loss = g_sum.item<double>();
    result.finite = std::isfinite(result.d_loss) && std::isfinite(result.g_loss);
  }
  if (m_sign_sum.defined()) {
    result.ada_sign_sum = m_sign_sum.item<double>();
    result.ada_count = static_cast<double>(m_sign_count);
  }
  if (result.steps > 0) {
    result.d_loss /= static_cast<double>(result.steps);
    result.g_loss /= static_cast<double>(result.steps);
  }
  for (auto& r : m_regularizers) r->end_party(result.steps);
  return result;
}

}  // namespace fedgan::train
