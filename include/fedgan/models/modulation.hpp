// Low-rank kernel modulation of G's transposed convolutions (AdAM: Zhao et al., NeurIPS 2022,
// "Few-shot Image Generation via Adaptation-Aware Kernel Modulation"): the base kernel W
// [in, out, k, k] stays the source's and the layer computes with W' = W ⊙ (1 + A Bᵀ), broadcast
// over the k×k taps, A [out, R] one row per filter (output channel), B [in, R] one row per input
// channel. A starts at zero, so a fresh modulation leaves G exactly the source (as LoRA).
// The dcgan generator registers "<layer>.mod_a" and "<layer>.mod_b" beside "<layer>.weight".
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fedgan/models/flat_parameters.hpp"

namespace fedgan::models {

inline constexpr const char* kModA = "mod_a";
inline constexpr const char* kModB = "mod_b";

// W ⊙ (1 + B Aᵀ) for a transposed convolution's weight [in, out, k, k], a [out, R], b [in, R].
torch::Tensor modulated_kernel(const torch::Tensor& weight, const torch::Tensor& a,
                               const torch::Tensor& b);

// Whether `name` is a modulation tensor ("….mod_a" or "….mod_b").
bool is_modulation_name(const std::string& name);

// One modulated layer of a model's flat buffer: its prefix ("blocks.0.conv", "out"), the flat
// offsets of its A and B, its filters (rows of A), input channels (rows of B) and rank.
struct ModulatedLayer {
  std::string prefix;
  std::int64_t a_offset = 0, b_offset = 0;
  std::int64_t filters = 0, inputs = 0, rank = 0;
};
// The modulated layers of `flat`, in its order (empty without modulation).
std::vector<ModulatedLayer> modulated_layers(const FlatParameters& flat);

// Named tensors of a modulated generator with every modulation folded into its kernel
// (weight ← W ⊙ (1 + A Bᵀ)) and the modulation tensors dropped: a plain generator's tensors.
std::map<std::string, torch::Tensor> fold_modulation(std::map<std::string, torch::Tensor> named);

}  // namespace fedgan::models
