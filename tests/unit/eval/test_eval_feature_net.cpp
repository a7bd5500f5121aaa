// The evaluator: a tiny one learns the synthetic classes, training is deterministic for a seed,
// the file round-trips bit for bit with its checksum, and bad inputs name the file and field.
#include <catch2/catch.hpp>

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
