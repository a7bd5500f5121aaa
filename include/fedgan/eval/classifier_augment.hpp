// Augmentation of the evaluator's training images: random horizontal flips and small random
// translations (zero padding + random crop), the standard label-preserving augmentations for
// small-image classifiers (e.g. Krizhevsky et al. 2012; He et al. 2016 on CIFAR). Drawn from a
// data::Rng, so training stays deterministic for a seed. Evaluation is never augmented: FID
// features come from one eval-mode forward of the plain image.
#pragma once

#include <torch/torch.h>

#include <string>

#include "fedgan/core/choice.hpp"
#include "fedgan/data/random.hpp"

namespace fedgan::eval {

struct ClassifierAugment {
  // Translations move an image by up to this many pixels along each axis.
  static constexpr int kMaxShift = 2;

  bool flip = false;       // mirror left-right with probability 1/2
  bool translate = false;  // shift by (dy, dx), each uniform in [-kMaxShift, kMaxShift]

  bool any() const { return flip || translate; }
  // "flip,translate" (any order, no repeats) or "none". fedgan::Error "--augment: ..." naming
  // the unknown or repeated word and the accepted ones.
  static ClassifierAugment parse(const std::string& text);
  std::string to_string() const;  // parse()'s inverse: "flip,translate", "flip", ..., "none"
};

// The words of --augment, each the ClassifierAugment flag it sets, in to_string()'s order.
const ChoiceTable<Choice<bool ClassifierAugment::*>>& classifier_augment_words();

// Augments a batch of uint8 images [B, C, H, W] (background 0, as in the dataset files): for
// each image in order, draws the flip coin (if flip) and then dy, dx (if translate) from `rng`,
// and returns the image mirrored first, then shifted down by dy and right by dx.
// Pixels moved in from outside are 0, so an image whose content lies at least kMaxShift pixels
// from the border keeps every pixel. Returns a new tensor; `images` is unchanged.
torch::Tensor augment_batch(const torch::Tensor& images, const ClassifierAugment& augment,
                            data::Rng& rng);

}  // namespace fedgan::eval
