// DCGAN (Radford et al. 2016) generator and discriminator for 28, 32, 64 and 128 pixel images
// with any channel count (grey, RGB), optionally conditional: label embedding concatenated to z in
// G, projection in D (Miyato & Koyama 2018); D optionally spectrally normalised (Miyato et al.
// 2018). Registered as family "dcgan".
#include <cmath>

#include "fedgan/core/error.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/models/modulation.hpp"
#include "fedgan/models/width.hpp"
#include "fedgan/models/spectral_norm.hpp"

namespace fedgan::models {
namespace {

namespace nn = torch::nn;

constexpr int kEmbedDim = 32;

void dcgan_init(nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    const auto& name = item.key();
    auto& p = item.value();
    const bool is_bn = name.find(".bn.") != std::string::npos;
    if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0) {
      p.zero_();
    } else if (is_bn) {
      p.normal_(1.0, 0.02);
    } else {
      p.normal_(0.0, 0.02);
    }
  }
}

// AdAM's modulation of a transposed convolution (models/modulation.hpp): registers mod_a
// [out, R] (zeros) and mod_b [in, R] (N(0, 1/sqrt(R)), from torch's global generator) on the
// convolution itself, so they are "<layer>.mod_a", "<layer>.mod_b" beside "<layer>.weight".
void add_modulation(nn::ConvTranspose2d& conv, int rank) {
  torch::NoGradGuard no_grad;
  const auto& w = conv->weight;  // [in, out, k, k]
  conv->register_parameter(kModA, torch::zeros({w.size(1), rank}));
  conv->register_parameter(kModB, torch::randn({w.size(0), rank}) / std::sqrt(double(rank)));
}

// The transposed convolution, with W' = W ⊙ (1 + A Bᵀ) when modulated; unmodulated it is the
// module's own forward, unchanged.
// (Stride and padding are given, not read from the options, whose padding is a variant.)
torch::Tensor up_conv(nn::ConvTranspose2d& conv, const torch::Tensor& x, std::int64_t stride,
                      std::int64_t pad) {
  const auto params = conv->named_parameters(/*recurse=*/false);
  const auto* a = params.find(kModA);
  if (a == nullptr) return conv(x);
  const auto w = modulated_kernel(conv->weight, *a, *params.find(kModB));
  return torch::conv_transpose2d(x, w, conv->bias, stride, pad);
}

struct UpBlockImpl : nn::Module {
  UpBlockImpl(int in, int out, int kernel, int stride, int pad)
      : conv_stride(stride), conv_pad(pad) {
    conv = register_module(
        "conv", nn::ConvTranspose2d(
                    nn::ConvTranspose2dOptions(in, out, kernel).stride(stride).padding(pad).bias(false)));
    bn = register_module("bn", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::relu(bn(up_conv(conv, x, conv_stride, conv_pad)));
  }
  std::int64_t conv_stride, conv_pad;
  nn::ConvTranspose2d conv{nullptr};
  nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(UpBlock);

// A stride-2 convolution with BatchNorm (no bias), or with a bias and nothing else, or
// spectrally normalised with a bias (registered as "conv" in every case, so names match).
struct DownBlockImpl : nn::Module {
  DownBlockImpl(int in, int out, bool norm, bool spectral) {
    if (spectral) {
      sn_conv = register_module("conv", SpectralConv2d(in, out, 4, 2, 1));
      return;
    }
    conv = register_module(
        "conv", nn::Conv2d(nn::Conv2dOptions(in, out, 4).stride(2).padding(1).bias(!norm)));
    if (norm) bn = register_module("bn", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = sn_conv ? sn_conv(x) : conv(x);
    if (bn) h = bn(h);
    return torch::leaky_relu(h, 0.2);
  }
  nn::Conv2d conv{nullptr};
  SpectralConv2d sn_conv{nullptr};
  nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(DownBlock);

class DcganGenerator final : public Generator {
 public:
  explicit DcganGenerator(const ModelConfig& c) : m_config(c) {
    const auto [s0, steps] = dcgan_geometry(c);
    int in = c.latent_dim;
    if (c.num_classes > 0) {
      m_embed = register_module("embed", nn::Embedding(c.num_classes, kEmbedDim));
      in += kEmbedDim;
    }
    m_blocks = register_module("blocks", nn::ModuleList());
    // Widths halve towards the image: g_width * 2^(steps-1), ..., g_width.
    int width = c.g_width << (steps - 1);
    m_blocks->push_back(UpBlock(in, width, s0, 1, 0));
    for (int i = 1; i < steps; ++i) {
      m_blocks->push_back(UpBlock(width, width / 2, 4, 2, 1));
      width /= 2;
    }
    m_out = register_module(
        "out", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(width, c.channels, 4).stride(2).padding(1)));
    dcgan_init(*this);
    // After the base's initial values, so a modulated G's base draws what an unmodulated one does.
    if (c.g_mod_rank > 0) {
      for (auto& block : *m_blocks) add_modulation(block->as<UpBlock>()->conv, c.g_mod_rank);
      add_modulation(m_out, c.g_mod_rank);
    }
  }

  torch::Tensor forward(const torch::Tensor& z, const torch::Tensor& labels) override {
    return forward_impl(z, labels, nullptr);
  }

  torch::Tensor forward_features(const torch::Tensor& z, const torch::Tensor& labels,
                                 std::vector<torch::Tensor>& features) override {
    return forward_impl(z, labels, &features);
  }

  torch::Tensor forward_impl(const torch::Tensor& z, const torch::Tensor& labels,
                             std::vector<torch::Tensor>* features) {
    auto h = z;
    if (m_embed) {
      require(labels.defined(), "generator: this model is conditional and needs labels");
      h = torch::cat({h, m_embed(labels)}, 1);
    }
    h = h.view({h.size(0), h.size(1), 1, 1});
    for (auto& block : *m_blocks) {
      h = block->as<UpBlock>()->forward(h);
      if (features) features->push_back(h);
    }
    if (m_scale != 1) h = h * m_scale;
    return torch::tanh(up_conv(m_out, h, 2, 1));
  }

  void set_width_scale(double scale) override { m_scale = scale; }

  std::vector<std::string> block_prefixes() const override {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < m_blocks->size(); ++i) out.push_back("blocks." + std::to_string(i));
    out.push_back("out");
    return out;
  }

 private:
  ModelConfig m_config;
  double m_scale = 1;  // HeteroFL's 1/r on the output layer's input (a width sub-model)
  nn::Embedding m_embed{nullptr};
  nn::ModuleList m_blocks{nullptr};
  nn::ConvTranspose2d m_out{nullptr};
};

class DcganDiscriminator final : public Discriminator {
 public:
  explicit DcganDiscriminator(const ModelConfig& c) {
    const auto [s0, steps] = dcgan_geometry(c);
    const bool norm = c.d_norm == DNorm::Batch;
    const bool spectral = c.d_norm == DNorm::Spectral;
    m_blocks = register_module("blocks", nn::ModuleList());
    int width = c.d_width;
    m_blocks->push_back(DownBlock(c.channels, width, /*norm=*/false, spectral));
    for (int i = 1; i < steps; ++i) {
      m_blocks->push_back(DownBlock(width, width * 2, norm, spectral));
      width *= 2;
    }
    const int features = width * s0 * s0;
    if (spectral) {
      m_sn_head = register_module("head", SpectralLinear(features, 1));
    } else {
      m_head = register_module("head", nn::Linear(features, 1));
    }
    if (c.num_classes > 0) m_embed = register_module("embed", nn::Embedding(c.num_classes, features));
    dcgan_init(*this);
  }

  torch::Tensor features(const torch::Tensor& x) override {
    auto h = x;
    for (auto& block : *m_blocks) h = block->as<DownBlock>()->forward(h);
    return h.flatten(1);
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& labels) override {
    auto f = features(x);
    if (m_scale != 1) f = f * m_scale;
    auto logit = (m_sn_head ? m_sn_head(f) : m_head(f)).squeeze(1);
    if (m_embed) {
      require(labels.defined(), "discriminator: this model is conditional and needs labels");
      logit = logit + (m_embed(labels) * f).sum(1);
    }
    return logit;
  }

  std::vector<std::string> block_prefixes() const override {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < m_blocks->size(); ++i) out.push_back("blocks." + std::to_string(i));
    out.push_back("head");
    return out;
  }

  void set_width_scale(double scale) override { m_scale = scale; }

 private:
  double m_scale = 1;  // HeteroFL's 1/r on the head's input (a width sub-model)
  nn::ModuleList m_blocks{nullptr};
  nn::Linear m_head{nullptr};
  SpectralLinear m_sn_head{nullptr};
  nn::Embedding m_embed{nullptr};
};

// The shapes the two classes above register, derived from the same geometry (a unit test holds
// them equal to the built models' for several configurations).
ModelShapes dcgan_shapes(const ModelConfig& c) {
  c.validate();
  const auto [s0, steps] = dcgan_geometry(c);
  ModelShapes out;
  auto bn = [](TensorShapes& t, const std::string& prefix, std::int64_t n) {
    for (const char* name : {"weight", "bias", "running_mean", "running_var"})
      t[prefix + ".bn." + name] = {n};
  };
  auto& g = out.generator;
  std::int64_t in = c.latent_dim;
  if (c.num_classes > 0) {
    g["embed.weight"] = {c.num_classes, kEmbedDim};
    in += kEmbedDim;
  }
  std::int64_t width = static_cast<std::int64_t>(c.g_width) << (steps - 1);
  const std::int64_t rank = c.g_mod_rank;
  auto mod = [rank](TensorShapes& t, const std::string& layer, std::int64_t in, std::int64_t out) {
    if (rank == 0) return;
    t[layer + "." + kModA] = {out, rank};
    t[layer + "." + kModB] = {in, rank};
  };
  g["blocks.0.conv.weight"] = {in, width, s0, s0};
  mod(g, "blocks.0.conv", in, width);
  bn(g, "blocks.0", width);
  for (int i = 1; i < steps; ++i) {
    const std::string p = "blocks." + std::to_string(i);
    g[p + ".conv.weight"] = {width, width / 2, 4, 4};
    mod(g, p + ".conv", width, width / 2);
    bn(g, p, width / 2);
    width /= 2;
  }
  g["out.weight"] = {width, c.channels, 4, 4};
  g["out.bias"] = {c.channels};
  mod(g, "out", width, c.channels);

  auto& d = out.discriminator;
  const bool norm = c.d_norm == DNorm::Batch;
  const bool spectral = c.d_norm == DNorm::Spectral;
  width = c.d_width;
  d["blocks.0.conv.weight"] = {width, c.channels, 4, 4};
  d["blocks.0.conv.bias"] = {width};
  if (spectral) d["blocks.0.conv.u"] = {width};
  for (int i = 1; i < steps; ++i) {
    const std::string p = "blocks." + std::to_string(i);
    d[p + ".conv.weight"] = {width * 2, width, 4, 4};
    if (norm) {
      bn(d, p, width * 2);
    } else {
      d[p + ".conv.bias"] = {width * 2};
    }
    if (spectral) d[p + ".conv.u"] = {width * 2};
    width *= 2;
  }
  const std::int64_t features = width * s0 * s0;
  d["head.weight"] = {1, features};
  d["head.bias"] = {1};
  if (spectral) d["head.u"] = {1};
  if (c.num_classes > 0) d["embed.weight"] = {c.num_classes, features};
  return out;
}

const bool kRegistered = [] {
  ModelRegistry::instance().add(
      "dcgan",
      [](const ModelConfig& c) {
        c.validate();
        ModelPair pair;
        pair.generator = std::make_shared<DcganGenerator>(c);
        pair.discriminator = std::make_shared<DcganDiscriminator>(c);
        return pair;
      },
      dcgan_shapes);
  return true;
}();

}  // namespace

DcganGeometry dcgan_geometry(const ModelConfig& c) {
  switch (c.image_size) {
    case 28: return {7, 2};
    case 32: return {4, 3};
    case 64: return {4, 4};
    case 128: return {4, 5};
    default:
      throw Error("model: image size " + std::to_string(c.image_size) +
                  " is not supported by dcgan (expected 28, 32, 64 or 128)");
  }
}

// Referenced from gan.cpp so the linker keeps this file's registration in the static library.
bool dcgan_registered() { return kRegistered; }

}  // namespace fedgan::models
