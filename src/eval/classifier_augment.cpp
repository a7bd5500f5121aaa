// Flips and translations of the evaluator's training images (see
// include/fedgan/eval/classifier_augment.hpp).
#include "fedgan/eval/classifier_augment.hpp"

#include <algorithm>
#include <cstdint>
#include <sstream>

#include "fedgan/core/error.hpp"

namespace fedgan::eval {

const ChoiceTable<Choice<bool ClassifierAugment::*>>& classifier_augment_words() {
  static const Choice<bool ClassifierAugment::*> entries[] = {
      {&ClassifierAugment::flip, "flip", "mirror left-right"},
      {&ClassifierAugment::translate, "translate", "shift by up to 2 pixels"},
  };
  static const ChoiceTable<Choice<bool ClassifierAugment::*>> table(entries, "--augment",
                                                                    "augmentation");
  return table;
}

ClassifierAugment ClassifierAugment::parse(const std::string& text) {
  ClassifierAugment a;
  if (text == "none") return a;
  const auto& words = classifier_augment_words();
  std::string listed;
  for (const auto& w : words.names()) listed += (listed.empty() ? "" : ", ") + w;
  const std::string accepted = "expected 'none' or a comma-separated list of " + listed;
  require(!text.empty(), "--augment: empty; " + accepted);
  std::istringstream s(text);
  std::string word;
  while (std::getline(s, word, ',')) {
    const auto* entry = words.find(word);
    require(entry != nullptr,
            "--augment: unknown augmentation '" + word + "' in '" + text + "'; " + accepted);
    bool& field = a.*(entry->value);
    require(!field, "--augment: '" + word + "' appears twice in '" + text + "'");
    field = true;
  }
  require(text.back() != ',', "--augment: '" + text + "' ends with a comma; " + accepted);
  return a;
}

std::string ClassifierAugment::to_string() const {
  std::string out;
  for (const auto& w : classifier_augment_words())
    if (this->*(w.value)) out += std::string(out.empty() ? "" : ",") + w.name;
  return out.empty() ? "none" : out;
}

torch::Tensor augment_batch(const torch::Tensor& images, const ClassifierAugment& augment,
                            data::Rng& rng) {
  require(images.dim() == 4 && images.scalar_type() == torch::kUInt8,
          "augment_batch: expected uint8 images [B,C,H,W] (background 0), got " +
              std::string(c10::toString(images.scalar_type())) + " " + c10::str(images.sizes()));
  const auto in = images.contiguous();
  if (!augment.any()) return in.clone();
  auto out = torch::zeros_like(in);
  const std::int64_t planes = in.size(1), h = in.size(2), w = in.size(3);
  const std::int64_t m = ClassifierAugment::kMaxShift;
  const auto* src = in.data_ptr<std::uint8_t>();
  auto* dst = out.data_ptr<std::uint8_t>();
  // A plain loop over the bytes: per-image tensor ops (narrow, flip, copy) cost more than the
  // copying itself at 64 images of 28x28 a batch.
  for (std::int64_t i = 0; i < in.size(0); ++i) {
    const bool mirror = augment.flip && rng.below(2) == 1;
    std::int64_t dy = 0, dx = 0;
    if (augment.translate) {
      dy = static_cast<std::int64_t>(rng.below(2 * m + 1)) - m;
      dx = static_cast<std::int64_t>(rng.below(2 * m + 1)) - m;
    }
    // out(y, x) = g(y - dy, x - dx), g the (mirrored) image; 0 where that lies outside.
    for (std::int64_t p = 0; p < planes; ++p) {
      const auto* plane = src + (i * planes + p) * h * w;
      auto* target = dst + (i * planes + p) * h * w;
      for (std::int64_t y = std::max<std::int64_t>(0, dy); y < std::min(h, h + dy); ++y)
        for (std::int64_t x = std::max<std::int64_t>(0, dx); x < std::min(w, w + dx); ++x) {
          const std::int64_t sx = mirror ? w - 1 - (x - dx) : x - dx;
          target[y * w + x] = plane[(y - dy) * w + sx];
        }
    }
  }
  return out;
}

}  // namespace fedgan::eval
