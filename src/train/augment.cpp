// DiffAugment (see include/fedgan/train/augment.hpp). The operations follow the authors'
// DiffAugment-pytorch (rand_brightness, rand_saturation, rand_contrast, rand_translation with
// ratio 1/8, rand_cutout with ratio 1/2); translation and cutout are written as a gather and a
// mask instead of advanced indexing (the same values, and differentiable the same way).
#include "fedgan/train/augment.hpp"

#include <sstream>
#include <vector>

#include "fedgan/core/error.hpp"

namespace fedgan::train {
namespace {

// Per-image coins: true with probability p; all true for p >= 1 (no draw needed then, but one
// is made so that the stream does not depend on p).
torch::Tensor coins(std::int64_t batch, double p, torch::Generator& gen,
                    const torch::TensorOptions& on) {
  auto u = torch::rand({batch, 1, 1, 1}, gen, on);
  return p >= 1.0 ? torch::ones_like(u, torch::kBool) : u.lt(p);
}

torch::Tensor apply_color(const torch::Tensor& x, torch::Generator& gen) {
  const auto b = x.size(0);
  const auto on = x.options();
  auto y = x + (torch::rand({b, 1, 1, 1}, gen, on) - 0.5);
  auto mean_c = y.mean(1, /*keepdim=*/true);
  y = (y - mean_c) * (torch::rand({b, 1, 1, 1}, gen, on) * 2) + mean_c;
  auto mean_all = y.mean({1, 2, 3}, /*keepdim=*/true);
  return (y - mean_all) * (torch::rand({b, 1, 1, 1}, gen, on) + 0.5) + mean_all;
}

// Shifts each image by (dy, dx) in [-s, s] with s = round(size/8), filling with zeros: the image
// padded by one zero pixel is read at clamp(i + d + 1, 0, size + 1), as the reference does.
torch::Tensor apply_translation(const torch::Tensor& x, torch::Generator& gen) {
  const auto b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const auto sh = static_cast<std::int64_t>(static_cast<double>(h) * 0.125 + 0.5);
  const auto sw = static_cast<std::int64_t>(static_cast<double>(w) * 0.125 + 0.5);
  const auto idx = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
  auto dy = torch::randint(-sh, sh + 1, {b, 1, 1}, gen, idx);
  auto dx = torch::randint(-sw, sw + 1, {b, 1, 1}, gen, idx);
  auto rows = (torch::arange(h, idx).view({1, h, 1}) + dy + 1).clamp(0, h + 1);
  auto cols = (torch::arange(w, idx).view({1, 1, w}) + dx + 1).clamp(0, w + 1);
  auto linear = (rows * (w + 2) + cols).view({b, 1, h * w}).expand({b, c, h * w});
  auto padded = torch::constant_pad_nd(x, {1, 1, 1, 1}, 0.0).reshape({b, c, (h + 2) * (w + 2)});
  return padded.gather(2, linear).view({b, c, h, w});
}

// Zeroes one square of side round(size/2) per image, centred anywhere (clipped at the edges).
torch::Tensor apply_cutout(const torch::Tensor& x, torch::Generator& gen) {
  const auto b = x.size(0), h = x.size(2), w = x.size(3);
  const auto ch = static_cast<std::int64_t>(static_cast<double>(h) * 0.5 + 0.5);
  const auto cw = static_cast<std::int64_t>(static_cast<double>(w) * 0.5 + 0.5);
  const auto idx = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
  auto oy = torch::randint(0, h + (1 - ch % 2), {b, 1, 1}, gen, idx) - ch / 2;
  auto ox = torch::randint(0, w + (1 - cw % 2), {b, 1, 1}, gen, idx) - cw / 2;
  auto r = torch::arange(h, idx).view({1, h, 1});
  auto col = torch::arange(w, idx).view({1, 1, w});
  auto inside =
      r.ge(oy).logical_and(r.lt(oy + ch)).logical_and(col.ge(ox)).logical_and(col.lt(ox + cw));
  return x * inside.logical_not().unsqueeze(1).to(x.scalar_type());
}

}  // namespace

const ChoiceTable<Choice<bool AugmentPolicy::*>>& augment_words() {
  static const Choice<bool AugmentPolicy::*> entries[] = {
      {&AugmentPolicy::translation, "translation", "integer shifts of up to 1/8 of the size"},
      {&AugmentPolicy::cutout, "cutout", "one zeroed square of half the size per image"},
      {&AugmentPolicy::color, "color", "brightness, saturation, contrast"},
      {&AugmentPolicy::color, "colour", nullptr},
  };
  static const ChoiceTable<Choice<bool AugmentPolicy::*>> table(entries, "--diffaug",
                                                                "augmentation");
  return table;
}

AugmentPolicy AugmentPolicy::parse(const std::string& text) {
  AugmentPolicy p;
  if (text.empty() || text == "none") return p;
  const auto& words = augment_words();
  std::string listed;
  for (const auto& w : words.names()) listed += (listed.empty() ? "" : ", ") + w;
  std::stringstream s(text);
  std::string word;
  while (std::getline(s, word, ',')) {
    const auto* entry = words.find(word);
    if (!entry)
      throw Error("--diffaug: unknown augmentation '" + word +
                  "' (expected a comma-separated list of " + listed + "; or none)");
    bool& flag = p.*(entry->value);
    if (flag) throw Error("--diffaug: '" + word + "' is given twice");
    flag = true;
  }
  return p;
}

std::string AugmentPolicy::to_string() const {
  std::string out;
  for (const auto& w : augment_words())
    if (w.help != nullptr && this->*(w.value)) out += std::string(out.empty() ? "" : ",") + w.name;
  return out.empty() ? "none" : out;
}

torch::Tensor augment(const torch::Tensor& images, const AugmentPolicy& policy, double p,
                      torch::Generator& gen) {
  require(images.dim() == 4, "augment: images must be [B, C, H, W]");
  require(p >= 0 && p <= 1, "augment: probability must be in [0, 1]");
  const auto b = images.size(0);
  const auto on = images.options();
  auto x = images;
  // Each operation: its coins, then its own draws, then where(coin, augmented, unchanged).
  auto step = [&](bool enabled, torch::Tensor (*op)(const torch::Tensor&, torch::Generator&)) {
    if (!enabled) return;
    const auto apply = coins(b, p, gen, on);
    const auto y = op(x, gen);
    x = p >= 1.0 ? y : torch::where(apply, y, x);
  };
  step(policy.color, apply_color);
  step(policy.translation, apply_translation);
  step(policy.cutout, apply_cutout);
  return x;
}

}  // namespace fedgan::train
