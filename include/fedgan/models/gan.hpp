// Generator and discriminator interfaces, the model registry, and Gan: G and D with their
// parameters re-seated on flat buffers (FlatParameters) so one collective moves each model.
#pragma once

#include "fedgan/models/flat_parameters.hpp"
#include "fedgan/models/model_config.hpp"

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fedgan::models {

class Generator : public torch::nn::Module {
 public:
  // z: [B, latent_dim]; labels: [B] int64 or undefined for unconditional models.
  // Returns images in [-1, 1], [B, C, H, W].
  virtual torch::Tensor forward(const torch::Tensor& z, const torch::Tensor& labels) = 0;
  // forward(), also appending each hidden block's output (input to output order) to
  // `features` (cross-domain correspondence, transfer/cdc). A family without them throws
  // fedgan::Error.
  virtual torch::Tensor forward_features(const torch::Tensor& z, const torch::Tensor& labels,
                                         std::vector<torch::Tensor>& features);
  // Name prefixes of the blocks in input-to-output order (for freezing and lr multipliers).
  virtual std::vector<std::string> block_prefixes() const = 0;
  // A width sub-model's scaler (HeteroFL's 1/r, models/width.hpp): multiplies the input of the
  // output layer. A family without it refuses any value but 1.
  virtual void set_width_scale(double scale);
};

class Discriminator : public torch::nn::Module {
 public:
  // Returns one logit per image, [B].
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& labels) = 0;
  // Penultimate features [B, F] (for feature-matching distillation).
  virtual torch::Tensor features(const torch::Tensor& x) = 0;
  virtual std::vector<std::string> block_prefixes() const = 0;
  // As Generator::set_width_scale: multiplies the features the head sums over.
  virtual void set_width_scale(double scale);
};

struct ModelPair {
  std::shared_ptr<Generator> generator;
  std::shared_ptr<Discriminator> discriminator;
};

// Name -> shape of every value a model holds (parameters and float buffers, as FlatParameters
// lists them), known without building the model: a checkpoint is checked against its
// architecture before a (possibly huge) model is allocated.
using TensorShapes = std::map<std::string, std::vector<std::int64_t>>;
struct ModelShapes {
  TensorShapes generator, discriminator;
};

// Families by name; a new family registers a factory here.
class ModelRegistry {
 public:
  using Factory = std::function<ModelPair(const ModelConfig&)>;
  using ShapesFn = std::function<ModelShapes(const ModelConfig&)>;
  static ModelRegistry& instance();
  void add(const std::string& family, Factory factory, ShapesFn shapes);
  ModelPair make(const ModelConfig& config) const;  // throws for an unknown family
  // The shapes make(config) would have (fedgan::Error for an unknown family or bad config).
  ModelShapes shapes(const ModelConfig& config) const;
  std::vector<std::string> families() const;

 private:
  struct Family {
    Factory make;
    ShapesFn shapes;
  };
  const Family& family(const ModelConfig& config) const;
  std::map<std::string, Family> m_families;
};

// A generator-discriminator pair whose parameters and float buffers live in two flat
// buffers, with matching flat gradient buffers.
class Gan {
 public:
  // Builds the models from `config`, initialising weights from torch's global CPU generator
  // (seed it first for reproducible weights), then moves them to `device` before flattening,
  // so a GPU model starts from exactly the CPU model's weights.
  explicit Gan(const ModelConfig& config, const torch::Device& device = torch::kCPU);
  Gan(const Gan&) = delete;
  Gan& operator=(const Gan&) = delete;

  const ModelConfig& config() const { return m_config; }
  Generator& generator() { return *m_g; }
  Discriminator& discriminator() { return *m_d; }
  std::shared_ptr<Generator> generator_ptr() { return m_g; }
  FlatParameters& g_flat() { return m_g_flat; }
  FlatParameters& d_flat() { return m_d_flat; }
  const FlatParameters& g_flat() const { return m_g_flat; }
  const FlatParameters& d_flat() const { return m_d_flat; }
  torch::Tensor& g_grad() { return m_g_grad; }
  torch::Tensor& d_grad() { return m_d_grad; }

  // Copies every value (parameters and buffers) from another Gan of the same architecture.
  void copy_from(const Gan& other);
  void train(bool on);
  torch::Device device() const { return m_g_flat.flat().device(); }

 private:
  ModelConfig m_config;
  std::shared_ptr<Generator> m_g;
  std::shared_ptr<Discriminator> m_d;
  FlatParameters m_g_flat, m_d_flat;
  torch::Tensor m_g_grad, m_d_grad;
};

// Seats every parameter's .grad on a view into one flat gradient buffer (zeros) and returns it.
// Autograd accumulates into existing gradients in place, so backward() fills the buffer.
torch::Tensor attach_flat_grads(torch::nn::Module& module, const FlatParameters& flat);

}  // namespace fedgan::models
