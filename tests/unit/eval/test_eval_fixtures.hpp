// Synthetic labelled 28x28 images for evaluation tests: three classes of bar/box patterns with
// seeded noise, written in the dataset-file schema, and a tiny evaluator trained on them.
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

// A tiny evaluator (8 features) trained for two epochs on 300 synthetic images.
inline eval::Evaluator tiny_evaluator(std::uint64_t seed = 0) {
  eval::EvaluatorTrainConfig c;
  c.epochs = 2;
  c.batch_size = 32;
  c.width = 4;
  c.feature_dim = 8;
  c.lr = 3e-3;
  c.seed = seed;
  return eval::train_evaluator(synthetic_images(300, 1), c);
}

}  // namespace fedgan::testing
