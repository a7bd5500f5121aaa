// Model registry and Gan (see include/fedgan/models/gan.hpp).
#include "fedgan/models/gan.hpp"

#include "fedgan/core/error.hpp"

namespace fedgan::models {

bool dcgan_registered();
bool torchscript_registered();

ModelRegistry& ModelRegistry::instance() {
  static ModelRegistry registry;
  return registry;
}

void ModelRegistry::add(const std::string& family, Factory factory, ShapesFn shapes) {
  m_families[family] = {std::move(factory), std::move(shapes)};
}

const ModelRegistry::Family& ModelRegistry::family(const ModelConfig& config) const {
  (void)dcgan_registered();
  (void)torchscript_registered();
  auto it = m_families.find(config.family);
  if (it == m_families.end()) {
    std::string known;
    for (auto& [name, f] : m_families) known += (known.empty() ? "" : ", ") + name;
    throw Error("model: unknown family '" + config.family + "' (known: " + known + ")");
  }
  return it->second;
}

ModelPair ModelRegistry::make(const ModelConfig& config) const {
  return family(config).make(config);
}

ModelShapes ModelRegistry::shapes(const ModelConfig& config) const {
  return family(config).shapes(config);
}

std::vector<std::string> ModelRegistry::families() const {
  (void)dcgan_registered();
  (void)torchscript_registered();
  std::vector<std::string> out;
  for (auto& [name, f] : m_families) out.push_back(name);
  return out;
}

torch::Tensor Generator::forward_features(const torch::Tensor&, const torch::Tensor&,
                                          std::vector<torch::Tensor>&) {
  throw Error("model: this generator family does not expose its hidden blocks' activations "
              "(--cdc-weight needs the built-in dcgan generator)");
}

void Generator::set_width_scale(double scale) {
  require(scale == 1, "model: this generator has no width scaler");
}

void Discriminator::set_width_scale(double scale) {
  require(scale == 1, "model: this discriminator has no width scaler");
}

torch::Tensor attach_flat_grads(torch::nn::Module& module, const FlatParameters& flat) {
  auto grad = torch::zeros({flat.parameter_numel()}, flat.flat().options());
  auto params = module.named_parameters(true);
  for (const auto& e : flat.entries()) {
    if (e.is_buffer) continue;
    auto& p = params[e.name];
    p.mutable_grad() = grad.narrow(0, e.offset, e.numel).view(e.shape);
  }
  return grad;
}

Gan::Gan(const ModelConfig& config, const torch::Device& device) : m_config(config) {
  auto pair = ModelRegistry::instance().make(config);
  m_g = pair.generator;
  m_d = pair.discriminator;
  if (!device.is_cpu()) {
    m_g->to(device);
    m_d->to(device);
  }
  m_g_flat = FlatParameters(*m_g);
  m_d_flat = FlatParameters(*m_d);
  m_g_grad = attach_flat_grads(*m_g, m_g_flat);
  m_d_grad = attach_flat_grads(*m_d, m_d_flat);
}

void Gan::copy_from(const Gan& other) {
  require(other.m_config == m_config, "Gan::copy_from: architectures differ");
  torch::NoGradGuard no_grad;
  m_g_flat.flat().copy_(other.m_g_flat.flat());
  m_d_flat.flat().copy_(other.m_d_flat.flat());
}

void Gan::train(bool on) {
  m_g->train(on);
  m_d->train(on);
}

}  // namespace fedgan::models
