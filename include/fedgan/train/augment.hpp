// Differentiable augmentation of the images D sees (DiffAugment, Zhao et al. 2020): random
// colour (brightness, saturation, contrast), translation and cutout, applied alike to real and
// generated images in D's and G's steps, so D cannot memorise a small training set while G's
// gradient still flows through the augmentation. With a probability p < 1 each operation is
// applied to each image independently with probability p: the strength that ADA (Karras et al.
// 2020) adapts (train/ada.hpp).
#pragma once

#include <torch/torch.h>

#include <string>

#include "fedgan/core/choice.hpp"

namespace fedgan::train {

struct AugmentPolicy {
  bool color = false;        // brightness ±0.5, saturation ×[0, 2], contrast ×[0.5, 1.5]
  bool translation = false;  // integer shifts of up to 1/8 of the size, zero padding
  bool cutout = false;       // one zeroed square of half the size per image

  bool any() const { return color || translation || cutout; }
  // "translation,cutout,color" (any order, no repeats), "" or "none": nothing.
  // fedgan::Error naming the unknown or repeated word and the accepted ones.
  static AugmentPolicy parse(const std::string& text);
  std::string to_string() const;  // parse()'s inverse; "none" when empty
};

// The words of --diffaug, each the AugmentPolicy flag it sets, in to_string()'s order
// ("colour": a hidden alias of color).
const ChoiceTable<Choice<bool AugmentPolicy::*>>& augment_words();

// Augments images [B, C, H, W] in [-1, 1] (the official DiffAugment's order: colour,
// translation, cutout). Every random number is drawn from `gen` (a generator of the images'
// device), in a fixed order and count whatever p is, so a run's draws do not depend on p.
// p = 1: every operation on every image (DiffAugment); p in [0, 1): ADA-style per-image coins;
// p = 0 returns the images unchanged (the draws are still made). Differentiable in `images`.
torch::Tensor augment(const torch::Tensor& images, const AugmentPolicy& policy, double p,
                      torch::Generator& gen);

}  // namespace fedgan::train
