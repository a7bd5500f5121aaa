// Sub-models at a width ratio (see include/fedgan/models/width.hpp).
#include "fedgan/models/width.hpp"

#include <fmt/format.h>

#include <cmath>
#include <map>

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"

namespace fedgan::models {
namespace {

std::string ratio_text(double r) { return fmt::format("{:g}", r); }

// The global flat index of every value of `sub` (in its order), from both models' entries.
torch::Tensor slice_index(const FlatParameters& global, const FlatParameters& sub,
                          const WidthRoll& roll, const std::string& what) {
  std::map<std::string, const FlatEntry*> by_name;
  for (const auto& e : global.entries()) by_name[e.name] = &e;
  require(sub.entries().size() == global.entries().size(),
          "width slice: the " + what + " of the sub-model has " +
              std::to_string(sub.entries().size()) + " tensors, the global one " +
              std::to_string(global.entries().size()));
  std::vector<torch::Tensor> parts;
  for (const auto& e : sub.entries()) {
    const auto it = by_name.find(e.name);
    require(it != by_name.end(), "width slice: " + what + " tensor '" + e.name +
                                     "' of the sub-model is not in the global model");
    const FlatEntry& g = *it->second;
    require(g.shape.size() == e.shape.size() && g.is_buffer == e.is_buffer,
            "width slice: " + what + " tensor '" + e.name + "' differs in kind or rank");
    auto index = torch::arange(g.offset, g.offset + g.numel, torch::kInt64).view(g.shape);
    for (std::size_t dim = 0; dim < e.shape.size(); ++dim) {
      const auto d = static_cast<std::int64_t>(dim);
      require(e.shape[dim] <= g.shape[dim],
              "width slice: " + what + " tensor '" + e.name + "' is wider in the sub-model");
      // A rolling window: the channels rotated by step/period of the dimension (a whole number
      // of values: every width dimension is a multiple of the base width), then the leading
      // block. Only dimensions the sub-model narrows roll (not the latent, image or classes).
      if (roll.step % roll.period != 0 && e.shape[dim] < g.shape[dim]) {
        const std::int64_t moved = g.shape[dim] * (roll.step % roll.period);
        require(moved % roll.period == 0,
                "width slice: " + what + " tensor '" + e.name + "' dimension " +
                    std::to_string(dim) + " (" + std::to_string(g.shape[dim]) +
                    ") is not a multiple of the base width " + std::to_string(roll.period));
        index = torch::roll(index, -(moved / roll.period), d);
      }
      index = index.narrow(d, 0, e.shape[dim]);
    }
    parts.push_back(index.reshape({-1}));
  }
  return parts.empty() ? torch::zeros({0}, torch::kInt64) : torch::cat(parts);
}

// The flat positions at which each Conv/ConvTranspose/Linear weight of the built-in dcgan is
// applied per image (its multiply-accumulates are weight values × positions): a transposed
// convolution is applied at each input position, a convolution at each output position.
double dcgan_macs(const FlatParameters& flat, const ModelConfig& c, bool generator) {
  const auto [s0, steps] = dcgan_geometry(c);
  double macs = 0;
  for (const auto& e : flat.entries()) {
    if (e.is_buffer || e.shape.size() < 2 || e.name.find("embed") != std::string::npos) continue;
    double positions = 1;
    if (generator) {
      // blocks.0 on the 1×1 latent; blocks.i (i ≥ 1) on s0·2^(i−1); out on s0·2^(steps−1).
      int side = 1;
      if (e.name.rfind("blocks.", 0) == 0) {
        const int i = std::stoi(e.name.substr(7));
        side = i == 0 ? 1 : s0 << (i - 1);
      } else if (e.name.rfind("out.", 0) == 0) {
        side = s0 << (steps - 1);
      }
      positions = static_cast<double>(side) * side;
    } else if (e.name.rfind("blocks.", 0) == 0) {
      const int i = std::stoi(e.name.substr(7));
      const int side = c.image_size >> (i + 1);  // 28 → 14 → 7; 32 → 16 → 8 → 4
      positions = static_cast<double>(side) * side;
    }
    macs += static_cast<double>(e.numel) * positions;
  }
  return macs;
}

}  // namespace

ModelConfig width_config(const ModelConfig& global, double ratio, const std::string& what) {
  if (!(ratio > 0 && ratio <= 1))
    throw Error(what + ": width ratio " + ratio_text(ratio) +
                " is outside (0, 1] (1 is the full model; 0.25 trains a quarter of every hidden "
                "layer's channels)");
  if (global.is_torchscript())
    throw Error(what + ": width ratios need a model fedgan can rebuild at another width (the "
                "built-in dcgan); a TorchScript model cannot be sliced (federated distillation "
                "lets parties' discriminators differ instead)");
  ModelConfig sub = global;
  // A hair above r·w so that 0.3 · 10 = 2.9999… still gives 3.
  sub.g_width = static_cast<int>(std::floor(ratio * global.g_width + 1e-9));
  sub.d_width = static_cast<int>(std::floor(ratio * global.d_width + 1e-9));
  if (sub.g_width < 1 || sub.d_width < 1)
    throw Error(what + ": width ratio " + ratio_text(ratio) + " leaves a layer with no channel (" +
                "G's base width " + std::to_string(global.g_width) + " → " +
                std::to_string(sub.g_width) + ", D's " + std::to_string(global.d_width) + " → " +
                std::to_string(sub.d_width) + "); the smallest ratio of this model is " +
                ratio_text(1.0 / std::min(global.g_width, global.d_width)));
  return sub;
}

WidthSlice width_slice(const Gan& global, const Gan& sub, std::int64_t roll_step) {
  WidthSlice s;
  const auto device = global.device();
  const auto& c = global.config();
  s.g = slice_index(global.g_flat(), sub.g_flat(), {roll_step, std::max(1, c.g_width)},
                    "generator")
            .to(device);
  s.d = slice_index(global.d_flat(), sub.d_flat(), {roll_step, std::max(1, c.d_width)},
                    "discriminator")
            .to(device);
  s.g_params = sub.g_flat().parameter_numel();
  s.d_params = sub.d_flat().parameter_numel();
  return s;
}

void copy_slice(const Gan& global, const WidthSlice& slice, Gan& sub) {
  torch::NoGradGuard no_grad;
  sub.g_flat().flat().copy_(global.g_flat().flat().index_select(0, slice.g));
  sub.d_flat().flat().copy_(global.d_flat().flat().index_select(0, slice.d));
}

void set_width_scaler(Gan& sub, double ratio) {
  sub.generator().set_width_scale(1.0 / ratio);
  sub.discriminator().set_width_scale(1.0 / ratio);
}

std::unique_ptr<Gan> make_submodel(const Gan& global, double ratio, bool scaler,
                                   const std::string& what) {
  auto sub = std::make_unique<Gan>(width_config(global.config(), ratio, what), global.device());
  copy_slice(global, width_slice(global, *sub), *sub);
  if (scaler) set_width_scaler(*sub, ratio);
  return sub;
}

void recompute_generator_bn(Gan& gan, std::uint64_t seed, std::int64_t n) {
  torch::NoGradGuard no_grad;
  auto& g = gan.generator();
  std::vector<torch::nn::BatchNorm2dImpl*> norms;
  for (auto& m : g.modules(/*include_self=*/false))
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) norms.push_back(bn);
  if (norms.empty()) return;
  std::vector<c10::optional<double>> momenta;
  for (auto* bn : norms) {
    momenta.push_back(bn->options.momentum());
    bn->options.momentum(c10::nullopt);  // cumulative mean over the batches below
    bn->reset_running_stats();           // in place: the values stay on the flat buffer
  }
  const bool was_training = g.is_training();
  g.train(true);
  auto gen = compat::make_generator(seed, torch::kCPU);
  const auto& c = gan.config();
  const auto opts = torch::TensorOptions().device(gan.device());
  for (std::int64_t done = 0; done < n; done += 64) {
    const std::int64_t b = std::min<std::int64_t>(64, n - done);
    auto z = torch::randn({b, c.latent_dim}, gen, torch::kFloat32).to(opts.device());
    torch::Tensor labels;
    if (c.num_classes > 0)
      labels = torch::randint(c.num_classes, {b}, gen, torch::kInt64).to(opts.device());
    g.forward(z, labels);
  }
  g.train(was_training);
  for (std::size_t i = 0; i < norms.size(); ++i) norms[i]->options.momentum(momenta[i]);
}

ModelCost model_cost(const Gan& gan) {
  ModelCost cost;
  cost.g_values = gan.g_flat().numel();
  cost.d_values = gan.d_flat().numel();
  if (gan.config().family == "dcgan") {
    cost.g_macs = dcgan_macs(gan.g_flat(), gan.config(), true);
    cost.d_macs = dcgan_macs(gan.d_flat(), gan.config(), false);
  }
  return cost;
}

}  // namespace fedgan::models
