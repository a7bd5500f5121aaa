// The evaluator's training augmentation: a flip is the exact mirror, a translation moves the
// image by at most kMaxShift pixels and keeps the pixel mass of content away from the borders,
// the draws follow the seed, and --augment's words parse with clear errors.
#include <catch2/catch.hpp>
#include <set>
#include <utility>

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/eval/classifier_augment.hpp"

using namespace fedgan;
using namespace fedgan::eval;
using Catch::Matchers::Contains;

namespace {

// n uint8 images [n,1,28,28]: random values in [1, 255] inside, 0 in a border of `border`.
torch::Tensor centred_images(std::int64_t n, std::int64_t border, std::uint64_t seed) {
  auto gen = compat::make_cpu_generator(seed);
  auto images = torch::zeros({n, 1, 28, 28}, torch::kUInt8);
  const auto side = 28 - 2 * border;
  images.narrow(2, border, side)
      .narrow(3, border, side)
      .copy_(torch::randint(1, 256, {n, 1, side, side}, gen, torch::kInt64));
  return images;
}

ClassifierAugment make(bool flip, bool translate) {
  ClassifierAugment a;
  a.flip = flip;
  a.translate = translate;
  return a;
}

// The (dy, dx) by which `out` is `in` rolled (content away from the borders, so a roll is a
// shift), mirrored first when `mirror`; {99, 99} when no shift within kMaxShift matches.
std::pair<int, int> find_shift(const torch::Tensor& in, const torch::Tensor& out, bool mirror) {
  const int m = ClassifierAugment::kMaxShift;
  const auto source = mirror ? in.flip({2}) : in;
  for (int dy = -m; dy <= m; ++dy)
    for (int dx = -m; dx <= m; ++dx)
      if (torch::equal(torch::roll(source, {dy, dx}, {1, 2}), out)) return {dy, dx};
  return {99, 99};
}

}  // namespace

TEST_CASE("evaluator augmentation: --augment parses its words and names the bad ones") {
  CHECK(ClassifierAugment::parse("flip,translate").to_string() == "flip,translate");
  CHECK(ClassifierAugment::parse("translate,flip").to_string() == "flip,translate");
  CHECK(ClassifierAugment::parse("flip").to_string() == "flip");
  CHECK(ClassifierAugment::parse("translate").to_string() == "translate");
  CHECK_FALSE(ClassifierAugment::parse("none").any());
  CHECK(ClassifierAugment{}.to_string() == "none");
  CHECK_THROWS_WITH(ClassifierAugment::parse("flip,rotate"),
                    Contains("--augment: unknown augmentation 'rotate' in 'flip,rotate'") &&
                        Contains("flip, translate"));
  CHECK_THROWS_WITH(ClassifierAugment::parse("flip,flip"), Contains("'flip' appears twice"));
  CHECK_THROWS_WITH(ClassifierAugment::parse(""), Contains("--augment: empty"));
  CHECK_THROWS_WITH(ClassifierAugment::parse("flip,"), Contains("ends with a comma"));
  CHECK_THROWS_WITH(ClassifierAugment::parse("none,flip"), Contains("unknown augmentation 'none'"));
}

TEST_CASE("a flipped training image is the exact mirror; both outcomes occur") {
  const auto images = centred_images(64, 0, 1);
  const auto before = images.clone();
  data::Rng rng(7);
  const auto out = augment_batch(images, make(true, false), rng);
  CHECK(torch::equal(images, before));  // the input is left alone
  int mirrored = 0, kept = 0;
  for (std::int64_t i = 0; i < 64; ++i) {
    const bool same = torch::equal(out[i], images[i]);
    const bool mirror = torch::equal(out[i], images[i].flip({2}));
    CHECK((same || mirror));
    mirrored += mirror ? 1 : 0;
    kept += same ? 1 : 0;
  }
  // With 64 fair coins (a fixed seed), both sides come up several times.
  CHECK(mirrored >= 16);
  CHECK(kept >= 16);
}

TEST_CASE("a translation keeps the pixel mass of content away from the borders") {
  const int m = ClassifierAugment::kMaxShift;
  const auto images = centred_images(200, m, 2);
  data::Rng rng(8);
  for (const bool flip : {false, true}) {
    const auto out = augment_batch(images, make(flip, true), rng);
    std::set<std::pair<int, int>> shifts;
    for (std::int64_t i = 0; i < images.size(0); ++i) {
      // Nothing leaves the image: the same pixel values, merely moved (and perhaps mirrored).
      CHECK(out[i].sum().item<std::int64_t>() == images[i].sum().item<std::int64_t>());
      auto shift = find_shift(images[i], out[i], false);
      if (flip && shift.first == 99) shift = find_shift(images[i], out[i], true);
      CHECK(shift.first != 99);
      shifts.insert(shift);
    }
    // Every one of the (2m+1)^2 shifts is drawn among 200 images.
    CHECK(shifts.size() == static_cast<std::size_t>((2 * m + 1) * (2 * m + 1)));
  }
}

TEST_CASE("a translation fills with 0 what moves in from outside") {
  const auto full = torch::full({50, 1, 28, 28}, 255, torch::kUInt8);
  data::Rng rng(9);
  const auto out = augment_batch(full, make(false, true), rng);
  const int m = ClassifierAugment::kMaxShift;
  for (std::int64_t i = 0; i < out.size(0); ++i) {
    // A shift by (dy, dx) keeps a (28-|dy|) x (28-|dx|) block of 255 and zeros the rest.
    const auto kept = out[i].eq(255).sum().item<std::int64_t>();
    const auto zeros = out[i].eq(0).sum().item<std::int64_t>();
    CHECK(kept + zeros == 28 * 28);
    bool fits = false;
    for (int dy = 0; dy <= m; ++dy)
      for (int dx = 0; dx <= m; ++dx) fits = fits || kept == (28 - dy) * (28 - dx);
    CHECK(fits);
  }
  CHECK(out.eq(0).any().item<bool>());
}

TEST_CASE("the same seed gives the same augmented batch; another seed another") {
  const auto images = centred_images(32, 2, 3);
  const auto both = make(true, true);
  data::Rng a(11), b(11), c(12);
  const auto first = augment_batch(images, both, a);
  CHECK(torch::equal(first, augment_batch(images, both, b)));
  CHECK_FALSE(torch::equal(first, augment_batch(images, both, c)));
  // The generator moves on: the next batch of the same images is augmented differently.
  CHECK_FALSE(torch::equal(first, augment_batch(images, both, a)));
  data::Rng d(11);
  CHECK(torch::equal(augment_batch(images, make(false, false), d), images));
  CHECK_THROWS_WITH(augment_batch(images.to(torch::kFloat32), both, d),
                    Contains("expected uint8 images"));
}
