// Sub-models of one global model at a width ratio r (HeteroFL, Diao et al., ICLR 2021): the
// sub-model keeps the leading ⌊r·w⌋ channels of every hidden layer of G and D (the image's
// channels, the latent and the classes stay), so each of its tensors is the leading block of the
// global tensor of the same name, and its flat buffer maps onto the global flat buffer by one
// index vector per model (docs/DESIGN.md, "Heterogeneous widths").
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>

#include "fedgan/models/gan.hpp"

namespace fedgan::models {

// The architecture of the sub-model at `ratio` ∈ (0, 1]: g_width and d_width times r, rounded
// down. fedgan::Error naming `what` (e.g. "--width-ratios: party 3") when the ratio is outside
// (0, 1], when it leaves a layer with no channel, or when the family cannot be rebuilt at another
// width (a TorchScript model).
ModelConfig width_config(const ModelConfig& global, double ratio, const std::string& what);

// Where a sub-model's values lie in the global model: for G and D, the global flat index of each
// value of the sub-model's flat buffer, in the sub-model's order (int64, on the global's device).
struct WidthSlice {
  torch::Tensor g, d;
  std::int64_t g_params = 0, d_params = 0;  // the sub-model's parameter counts (they come first)
};
// Requires the same tensor names in the same order, each sub shape no larger in any dimension.
// roll_step = 0: the leading channels of every hidden layer (HeteroFL). roll_step = s: a rolling
// window (FedRolex, Alam et al., NeurIPS 2022): every dimension the sub-model narrows is first
// rotated by s/w of its size (w the model's base width, G's g_width and D's d_width; a layer of
// k·w channels moves by k·s channels, D's head over C·s0² features by whole channels), so the
// window stays one set of channels through consecutive layers, and as s counts the rounds every
// channel is trained by parties of every width.
WidthSlice width_slice(const Gan& global, const Gan& sub, std::int64_t roll_step = 0);

// The rotation of one model's width dimensions: step/period of each dimension's size.
struct WidthRoll {
  std::int64_t step = 0, period = 1;
};

// sub ← the global model's values at the slice (parameters and buffers).
void copy_slice(const Gan& global, const WidthSlice& slice, Gan& sub);

// HeteroFL's 1/r scaler on a sub-model of `ratio`: set_width_scale(1/r) on its G and D.
void set_width_scaler(Gan& sub, double ratio);

// The sub-model at `ratio` of `global`, with its values; `scaler`: HeteroFL's 1/r on the inputs
// of the layers that sum over hidden channels without a normalisation after them (G's output
// layer, D's head), so a narrower model's outputs keep the full model's scale.
std::unique_ptr<Gan> make_submodel(const Gan& global, double ratio, bool scaler,
                                   const std::string& what);

// Static BatchNorm (HeteroFL's sBN, for a generator): G's running statistics recomputed from
// its own activations on `n` fixed latents (and labels), drawn from `seed`, as the cumulative
// mean over batches of 64 in training mode; G is left in the mode it was in. No data is needed:
// G's statistics are those of its own activations.
void recompute_generator_bn(Gan& gan, std::uint64_t seed, std::int64_t n = 1024);

// The built-in dcgan's geometry (models/dcgan.cpp), which its layers and the cost below follow:
// the side s0 of G's first block and D's last block, and the stride-2 steps between it and the
// image: 7·2² = 28, 4·2³ = 32, 4·2⁴ = 64, 4·2⁵ = 128. Widths double with every step, so at
// 128 px G's first block has 16·g_width channels. fedgan::Error for another image size.
struct DcganGeometry {
  int s0 = 4, steps = 3;
};
DcganGeometry dcgan_geometry(const ModelConfig& config);

// What one model costs (HeteroFL reports these per ratio): values, multiply-accumulates of one
// image's forward pass, and the bytes one FedAvg round moves per party (its values up and down,
// float32).
struct ModelCost {
  std::int64_t g_values = 0, d_values = 0;
  double g_macs = 0, d_macs = 0;  // per image, forward
};
// Multiply-accumulates of every Conv/ConvTranspose/Linear layer of G and D, from a forward pass
// on one image's input (counted by shapes, not timed).
ModelCost model_cost(const Gan& gan);

}  // namespace fedgan::models
