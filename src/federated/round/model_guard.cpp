// The round's guard on the global model (see include/fedgan/federated/round/model_guard.hpp).
#include "fedgan/federated/round/model_guard.hpp"

#include <cmath>
#include <cstdio>

#include "fedgan/core/torch_compat.hpp"

namespace fedgan::federated {
namespace {

std::string num(double v, int digits = 3) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*g", digits, v);
  return buf;
}

// The probe's inputs have their own generator: checking the model draws nothing from the
// generators training uses.
constexpr std::uint64_t kProbeSeed = 0x70726f6265;  // "probe"

std::int64_t count_nonfinite(const torch::Tensor& t) {
  return (~torch::isfinite(t)).sum().item<std::int64_t>();
}

}  // namespace

bool ModelHealth::ok() const {
  return g_nonfinite == 0 && d_nonfinite == 0 && g_probe_nonfinite == 0 && d_probe_nonfinite == 0;
}

std::string ModelHealth::describe() const {
  if (ok()) return "";
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : "; ") + part; };
  if (g_nonfinite > 0)
    add("G holds " + std::to_string(g_nonfinite) + " NaN/inf of its " + std::to_string(g_values) +
        " values");
  if (d_nonfinite > 0)
    add("D holds " + std::to_string(d_nonfinite) + " NaN/inf of its " + std::to_string(d_values) +
        " values");
  if (!out.empty()) return out;
  out = "its values are finite (largest |value| " + num(g_max_abs) + " in G, " + num(d_max_abs) +
        " in D) but ";
  std::string probe;
  if (g_probe_nonfinite > 0)
    probe = "G's images of " + std::to_string(probe_inputs) + " fixed latents hold " +
            std::to_string(g_probe_nonfinite) + " NaN/inf of " + std::to_string(g_probe_values) +
            " values";
  if (d_probe_nonfinite > 0)
    probe += (probe.empty() ? "" : " and ") + std::string("D's logits of ") +
             std::to_string(probe_inputs) + " fixed images hold " +
             std::to_string(d_probe_nonfinite) + " NaN/inf of " +
             std::to_string(d_probe_values);
  return out + probe + " (eval mode, as sample grids and evaluation run the model)";
}

ModelHealth inspect_model(models::Gan& gan, int probe_inputs) {
  torch::NoGradGuard no_grad;
  ModelHealth h;
  const auto& g = gan.g_flat().flat();
  const auto& d = gan.d_flat().flat();
  h.g_values = g.numel();
  h.d_values = d.numel();
  // One reduction per model: a NaN or inf makes the maximum NaN or inf.
  h.g_max_abs = h.g_values > 0 ? g.abs().max().item<double>() : 0.0;
  h.d_max_abs = h.d_values > 0 ? d.abs().max().item<double>() : 0.0;
  if (!std::isfinite(h.g_max_abs)) h.g_nonfinite = count_nonfinite(g);
  if (!std::isfinite(h.d_max_abs)) h.d_nonfinite = count_nonfinite(d);
  if (h.g_nonfinite > 0 || h.d_nonfinite > 0 || probe_inputs <= 0) return h;

  const auto& config = gan.config();
  auto gen = compat::make_cpu_generator(kProbeSeed);
  const auto z = torch::randn({probe_inputs, config.latent_dim}, gen).to(gan.device());
  const auto images = (torch::rand({probe_inputs, config.channels, config.image_size,
                                    config.image_size},
                                   gen) *
                           2 -
                       1)
                          .to(gan.device());
  torch::Tensor labels;
  if (config.num_classes > 0)
    labels = (torch::arange(probe_inputs, torch::kInt64) % config.num_classes).to(gan.device());
  auto& generator = gan.generator();
  auto& discriminator = gan.discriminator();
  const bool g_training = generator.is_training(), d_training = discriminator.is_training();
  generator.eval();
  discriminator.eval();
  const auto fakes = generator.forward(z, labels);
  const auto logits = discriminator.forward(images, labels);
  generator.train(g_training);
  discriminator.train(d_training);
  h.probed = true;
  h.probe_inputs = probe_inputs;
  h.g_probe_values = fakes.numel();
  h.d_probe_values = logits.numel();
  h.g_probe_nonfinite = count_nonfinite(fakes);
  h.d_probe_nonfinite = count_nonfinite(logits);
  return h;
}

std::string unusable_model_message(const ModelHealth& health, const RoundSuspects& s) {
  const std::string r = std::to_string(s.round);
  std::string attack;
  if (s.attack.empty())
    attack = "no --attack is active";
  else
    attack = "--attack " + s.attack + " is active: an attacker-sized update" +
             (s.aggregator == "fedavg"
                  ? " (FedAvg passes it on; a robust --aggregator such as median keeps it out)"
                  : " that --aggregator " + s.aggregator + " let through");
  return "round " + r + ": the global model is unusable after the server step: " +
         health.describe() + ". The model of round " + std::to_string(s.round - 1) +
         " was put back and nothing of round " + r +
         " is written (no sample grid, checkpoint or metrics row). Likely causes, with round " + r +
         "'s numbers: the aggregate (--aggregator " + s.aggregator + ", " +
         std::to_string(s.parties) + " parties) has a largest |mean update| of " +
         num(s.g_mean_max_abs) + " in G and " + num(s.d_mean_max_abs) +
         " in D (sums / denominator " + num(s.denominator, 9) + "); " + attack +
         "; the server step: --server-optimizer " + s.server_optimizer + ", --server-lr " +
         num(s.server_lr) + "; local training: --lr-g " + num(s.lr_g) + ", --lr-d " +
         num(s.lr_d) + " (lower them, or --server-lr, when no attack explains it)";
}

}  // namespace fedgan::federated
