// The evaluator: a tiny one learns the synthetic classes (28 px grey; RGB at 64 and 128 px),
// training is deterministic for a seed, the feature network adapts to each size, the file
// round-trips bit for bit with its checksum and input shape, and bad inputs name the file and
// field.
#include <catch2/catch.hpp>
#include <set>

#include "fedgan/core/error.hpp"
#include "fedgan/data/shard_loader.hpp"
#include "fedgan/eval/evaluator_training.hpp"
#include "fedgan/eval/feature_net.hpp"
#include "fedgan/io/hdf5.hpp"
#include "temp_dir.hpp"
#include "test_eval_fixtures.hpp"

using namespace fedgan;
using namespace fedgan::eval;
using Catch::Matchers::Contains;
using fedgan::testing::TempDir;

TEST_CASE("a tiny evaluator learns the synthetic classes; training is deterministic") {
  auto ev = testing::tiny_evaluator(0);
  const auto test = testing::synthetic_images(150, 99);
  CHECK(classification_accuracy(ev, test) > 0.9);
  CHECK(ev.config().to_string() == "cnn c=1 s=28 k=3 w=4 f=8");
  const auto f = ev.features(data::to_unit_range(test.images), "test");
  CHECK(f.sizes() == torch::IntArrayRef({150, 8}));
  CHECK(testing::tiny_evaluator(0).checksum() == ev.checksum());
  CHECK(testing::tiny_evaluator(1).checksum() != ev.checksum());
}

TEST_CASE("an evaluator file round-trips; a changed weight fails the checksum") {
  TempDir dir;
  auto ev = testing::tiny_evaluator(0);
  ev.test_accuracy = 0.75;
  ev.save(dir.file("ev.h5"));
  auto back = Evaluator::load(dir.file("ev.h5"));
  CHECK(back.checksum() == ev.checksum());
  CHECK(back.test_accuracy == 0.75);
  CHECK(back.path() == dir.file("ev.h5"));
  const auto x = data::to_unit_range(testing::synthetic_images(20, 4).images);
  CHECK(torch::equal(back.features(x, "x"), ev.features(x, "x")));

  {
    h5::File f(dir.file("ev.h5"), h5::File::Mode::ReadWrite);
    f.write("/feature_net/fc.bias", f.read("/feature_net/fc.bias") + 1);
  }
  CHECK_THROWS_WITH(Evaluator::load(dir.file("ev.h5")),
                    Contains("ev.h5: evaluator checksum") && Contains("does not match"));
  {
    h5::File f(dir.file("other.h5"), h5::File::Mode::Create);
    f.set_attr("/", "format", std::string("fedgan-checkpoint-1"));
  }
  CHECK_THROWS_WITH(Evaluator::load(dir.file("other.h5")),
                    Contains("other.h5: not a fedgan evaluator"));
}

TEST_CASE("images of another shape and data without labels are clear errors") {
  TempDir dir;
  auto ev = testing::tiny_evaluator(0);
  CHECK_THROWS_WITH(ev.features(torch::zeros({2, 3, 28, 28}), "rgb.h5"),
                    Contains("rgb.h5: images are 3x28x28 but the evaluator expects 1x28x28"));
  CHECK_THROWS_WITH(ev.features(torch::zeros({2, 1, 32, 32}), "big.h5"),
                    Contains("expects 1x28x28"));
  {
    h5::File f(dir.file("unlabelled.h5"), h5::File::Mode::Create);
    f.write("/images", torch::zeros({4, 1, 28, 28}, torch::kUInt8));
  }
  CHECK_THROWS_WITH(read_labelled_images(dir.file("unlabelled.h5")),
                    Contains("unlabelled.h5: missing dataset /labels"));
  CHECK_THROWS_WITH(Evaluator(FeatureNetConfig::parse("cnn c=1 s=30")),
                    Contains("image size 30 must be a multiple of 4"));
  CHECK_THROWS_WITH(FeatureNetConfig::parse("cnn q=1"), Contains("unknown key 'q'"));
}

TEST_CASE("fedgan evaluator refuses below --min-accuracy and writes nothing") {
  TempDir dir;
  testing::write_synthetic_dataset(dir.file("train.h5"), 120, 1, 1);
  testing::write_synthetic_dataset(dir.file("test.h5"), 60, 1, 2);
  EvaluatorTrainConfig c;
  c.data = dir.file("train.h5");
  c.test = dir.file("test.h5");
  c.out = dir.file("ev.h5");
  c.epochs = 1;
  c.width = 2;
  c.feature_dim = 4;
  c.min_accuracy = 1.0;
  c.lr = 1e-6;  // learns nothing: accuracy near chance
  CHECK_THROWS_WITH(run_evaluator_training(c), Contains("is below --min-accuracy"));
  CHECK_FALSE(std::filesystem::exists(c.out));
  c.min_accuracy = 0;
  CHECK(run_evaluator_training(c) >= 0);
  CHECK(Evaluator::load(c.out).feature_dim() == 4);
}

TEST_CASE("the feature network adapts to 28, 32, 64 and 128 pixels, grey or RGB") {
  for (int size : {28, 32, 64, 128}) {
    for (int channels : {1, 3}) {
      torch::manual_seed(0);
      const auto config = FeatureNetConfig::parse("cnn c=" + std::to_string(channels) +
                                                  " s=" + std::to_string(size) + " k=3 w=4 f=8");
      Evaluator ev(config);
      CHECK(ev.input_shape() ==
            std::to_string(channels) + "x" + std::to_string(size) + "x" + std::to_string(size));
      const int steps = size == 128 ? 2 : size == 64 ? 1 : 0;
      CHECK(config.stem_steps() == steps);
      std::set<std::string> names;
      for (const auto& p : ev.net()->named_parameters()) names.insert(p.key());
      // Up to 32 pixels: the first evaluators' network, no stem; above: one stem step per halving.
      CHECK(names.count("stem.0.weight") == (steps > 0 ? 1u : 0u));
      CHECK(names.count("stem.3.weight") == (steps > 1 ? 1u : 0u));
      CHECK(names.count("stem.6.weight") == 0u);
      // The fc layer reads a 7x7 grid at 28 pixels and an 8x8 grid at every other size.
      const std::int64_t grid = size == 28 ? 7 : 8;
      CHECK(ev.net()->fc->weight.sizes() == torch::IntArrayRef({8, 2 * 4 * grid * grid}));
      const auto f = ev.features(torch::zeros({2, channels, size, size}), "x");
      CHECK(f.sizes() == torch::IntArrayRef({2, 8}));
    }
  }
  for (const char* bad : {"cnn c=3 s=30 k=3", "cnn c=3 s=66 k=3", "cnn c=1 s=36 k=3"})
    CHECK_THROWS_WITH(Evaluator(FeatureNetConfig::parse(bad)),
                      Contains("must be a multiple of 4 up to 32, or halve to one"));
}

TEST_CASE(
    "RGB evaluators at 64 and 128 pixels learn the synthetic classes and record their shape") {
  TempDir dir;
  for (int size : {64, 128}) {
    const auto shape = "3x" + std::to_string(size) + "x" + std::to_string(size);
    auto ev = testing::tiny_evaluator(0, size);
    CHECK(ev.config().to_string() == "cnn c=3 s=" + std::to_string(size) + " k=3 w=8 f=16");
    const auto test = testing::synthetic_rgb_images(150, size, 99);
    CHECK(classification_accuracy(ev, test) > 0.9);
    const auto path = dir.file("ev" + std::to_string(size) + ".h5");
    ev.save(path);
    {
      h5::File f(path, h5::File::Mode::Read);
      CHECK(f.attr_string("/", "input_shape").value() == shape);
      CHECK(f.attr_int("/", "channels").value() == 3);
      CHECK(f.attr_int("/", "image_size").value() == size);
    }
    auto back = Evaluator::load(path);
    CHECK(back.checksum() == ev.checksum());
    CHECK(back.input_shape() == shape);
    const auto x = data::to_unit_range(test.images.narrow(0, 0, 10));
    CHECK(torch::equal(back.features(x, "x"), ev.features(x, "x")));
    CHECK_THROWS_WITH(
        back.features(torch::zeros({2, 1, 28, 28}), "fmnist.h5"),
        Contains("fmnist.h5: images are 1x28x28 but the evaluator " + path + " expects " + shape));
    CHECK_THROWS_WITH(
        back.check_image_shape(3, 32, 32, "run.h5"),
        Contains("run.h5: images are 3x32x32 but the evaluator " + path + " expects " + shape));
  }
}

TEST_CASE("evaluator files: shape attributes match the architecture, older files load or fail") {
  TempDir dir;
  // An input shape attribute that contradicts the architecture string.
  testing::tiny_evaluator(0, 64).save(dir.file("ev64.h5"));
  {
    h5::File f(dir.file("ev64.h5"), h5::File::Mode::ReadWrite);
    f.set_attr("/", "input_shape", std::string("1x28x28"));
  }
  CHECK_THROWS_WITH(Evaluator::load(dir.file("ev64.h5")),
                    Contains("ev64.h5: evaluator attribute input_shape = 1x28x28 contradicts its "
                             "architecture 'cnn c=3 s=64 k=3 w=8 f=16' (input 3x64x64)"));
  // A 64 px evaluator from before the stem (its tensors stop at conv1): refused by name.
  {
    h5::File f(dir.file("prestem.h5"), h5::File::Mode::Create);
    f.set_attr("/", "format", std::string(kEvaluatorFormat));
    f.set_attr("/", "architecture", std::string("cnn c=3 s=64 k=3 w=4 f=8"));
  }
  CHECK_THROWS_WITH(Evaluator::load(dir.file("prestem.h5")),
                    Contains("prestem.h5: this 3x64x64 evaluator comes from a fedgan whose "
                             "feature network had no stem") &&
                        Contains("train it again with `fedgan evaluator`"));
  // A file with neither shape attributes nor c= and s= in its architecture reads as 1x28x28.
  auto ev = testing::tiny_evaluator(0);
  {
    h5::File f(dir.file("old.h5"), h5::File::Mode::Create);
    f.set_attr("/", "format", std::string(kEvaluatorFormat));
    f.set_attr("/", "architecture", std::string("cnn k=3 w=4 f=8"));
    f.set_attr("/", "checksum", ev.checksum());
    f.create_group("/feature_net");
    for (const auto& p : ev.net()->named_parameters())
      f.write("/feature_net/" + p.key(), p.value());
    for (const auto& b : ev.net()->named_buffers()) f.write("/feature_net/" + b.key(), b.value());
  }
  auto old = Evaluator::load(dir.file("old.h5"));
  CHECK(old.input_shape() == "1x28x28");
  CHECK(old.checksum() == ev.checksum());
}
