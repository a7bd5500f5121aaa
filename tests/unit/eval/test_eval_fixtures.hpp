// Synthetic labelled images for evaluation tests: three classes of bar/box patterns with seeded
// noise (28x28 grey, or RGB of any size), written in the dataset-file schema, and a tiny
// evaluator trained on them.
#pragma once

#include <string>

#include "fedgan/core/torch_compat.hpp"
#include "fedgan/eval/evaluator_training.hpp"
#include "fedgan/io/hdf5.hpp"

namespace fedgan::testing {

// n images uint8 [n,1,28,28]; label i % 3: 0 a horizontal bar, 1 a vertical bar, 2 a box;
// background 20 plus noise in [0, 60) from `seed`.
inline eval::LabelledImages synthetic_images(std::int64_t n, std::uint64_t seed) {
  auto gen = compat::make_cpu_generator(seed);
  auto images = torch::randint(0, 60, {n, 1, 28, 28}, gen, torch::kInt64) + 20;
  auto labels = torch::arange(n, torch::kInt64) % 3;
  for (std::int64_t i = 0; i < n; ++i) {
    auto img = images[i][0];
    const auto shift = (i * 7) % 9;  // some variety within a class
    switch (i % 3) {
      case 0:
        img.narrow(0, 6 + shift, 5).fill_(230);
        break;
      case 1:
        img.narrow(1, 6 + shift, 5).fill_(230);
        break;
      default:
        img.narrow(0, 8, 12).narrow(1, 8, 12).fill_(180);
        break;
    }
  }
  return {images.to(torch::kUInt8), labels, 3};
}

// n RGB images uint8 [n,3,size,size]; label i % 3: 0 a red horizontal bar, 1 a green vertical
// bar, 2 a blue box; a grey background with noise in [0, 60) from `seed`.
inline eval::LabelledImages synthetic_rgb_images(std::int64_t n, std::int64_t size,
                                                 std::uint64_t seed) {
  auto gen = compat::make_cpu_generator(seed);
  auto images = torch::randint(0, 60, {n, 3, size, size}, gen, torch::kInt64) + 40;
  auto labels = torch::arange(n, torch::kInt64) % 3;
  const auto unit = size / 8;  // bars are a unit thick, boxes half the image
  for (std::int64_t i = 0; i < n; ++i) {
    auto img = images[i];
    const auto offset = unit + (i * 7) % (4 * unit);
    switch (i % 3) {
      case 0:
        img[0].narrow(0, offset, unit).fill_(230);
        break;
      case 1:
        img[1].narrow(1, offset, unit).fill_(230);
        break;
      default:
        img[2].narrow(0, 2 * unit, 4 * unit).narrow(1, 2 * unit, 4 * unit).fill_(220);
        break;
    }
  }
  return {images.to(torch::kUInt8), labels, 3};
}

// The dataset-file schema with `parties` round-robin parties (party k: rows i with i % P == k).
inline void write_synthetic_dataset(const std::string& path, std::int64_t n, int parties,
                                    std::uint64_t seed) {
  const auto data = synthetic_images(n, seed);
  h5::File f(path, h5::File::Mode::Create);
  f.write("/images", data.images);
  f.write("/labels", data.labels);
  f.set_attr("/", "name", std::string("synthetic"));
  f.set_attr("/", "num_classes", std::int64_t{3});
  f.create_group("/parties");
  f.set_attr("/parties", "num_parties", static_cast<std::int64_t>(parties));
  for (int k = 0; k < parties; ++k)
    f.write("/parties/" + std::to_string(k) + "/indices",
            torch::arange(k, n, parties, torch::kInt64));
  f.close();
}

// A tiny evaluator trained on 300 synthetic images: 28 px grey (width 4, 8 features, two
// epochs), or RGB of the given size (width 8, 16 features, four epochs: after two, with 20 steps
// in all, the BatchNorm running statistics of some seeds still lagged the weights, and eval mode
// lost a class that training mode had learnt).
inline eval::Evaluator tiny_evaluator(std::uint64_t seed = 0, std::int64_t rgb_size = 0) {
  eval::EvaluatorTrainConfig c;
  c.epochs = rgb_size > 0 ? 4 : 2;
  c.batch_size = 32;
  c.width = rgb_size > 0 ? 8 : 4;
  c.feature_dim = rgb_size > 0 ? 16 : 8;
  c.lr = 3e-3;
  c.seed = seed;
  return eval::train_evaluator(
      rgb_size > 0 ? synthetic_rgb_images(300, rgb_size, 1) : synthetic_images(300, 1), c);
}

}  // namespace fedgan::testing
