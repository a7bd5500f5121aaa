// Evaluation end to end on the serial communicator: real statistics (pooled = merged parties),
// their cache (reused, recomputed when the dataset or the evaluator changes), the sanity figures
// (real vs real small, noise large) and generator evaluation (deterministic, mode restored).
#include <catch2/catch.hpp>
#include <filesystem>

#include "fedgan/core/error.hpp"
#include "fedgan/data/shard_loader.hpp"
#include "fedgan/eval/evaluate.hpp"
#include "fedgan/models/gan.hpp"
#include "temp_dir.hpp"
#include "test_eval_fixtures.hpp"

using namespace fedgan;
using namespace fedgan::eval;
using Catch::Matchers::Contains;
using fedgan::testing::TempDir;

TEST_CASE("real statistics: pooled = merged parties; the subset is seeded; cache reuse") {
  TempDir dir;
  auto comm = make_serial_communicator();
  auto ev = testing::tiny_evaluator(0);
  const auto path = dir.file("real.h5");
  testing::write_synthetic_dataset(path, 300, 3, 7);
  RealStatsOptions o;
  o.max_features = 200;
  const auto s = load_or_compute_real_stats(*comm, path, ev, o);
  CHECK_FALSE(s.from_cache);
  REQUIRE(s.parties.size() == 3);
  CHECK(s.all.count == 300);
  auto merged = FeatureStats::zeros(8);
  for (const auto& p : s.parties) merged.merge(p);
  CHECK(torch::allclose(merged.outer, s.all.outer));
  CHECK(s.features.sizes() == torch::IntArrayRef({200, 8}));
  // The subset rows are real features: each equals some row of the full embedding.
  h5::File f(path, h5::File::Mode::Read);
  const auto all = ev.features(data::to_unit_range(f.read("/images")), path);
  CHECK(torch::allclose(FeatureStats::of(all).outer, s.all.outer, 1e-6, 1e-6));
  CHECK(std::get<0>(torch::cdist(s.features.to(torch::kFloat64), all.to(torch::kFloat64)).min(1))
            .max()
            .item<double>() < 1e-4);

  const auto cache = default_cache_path(path, ev);
  REQUIRE(std::filesystem::exists(cache));
  const auto again = load_or_compute_real_stats(*comm, path, ev, o);
  CHECK(again.from_cache);
  CHECK(torch::equal(again.all.outer, s.all.outer));
  CHECK(torch::equal(again.features, s.features));
  REQUIRE(again.parties.size() == 3);
  CHECK(again.parties[2].count == s.parties[2].count);

  // A newer dataset file (same path) makes the cache stale.
  std::filesystem::last_write_time(
      path, std::filesystem::last_write_time(path) + std::chrono::seconds(5));
  CHECK_FALSE(load_or_compute_real_stats(*comm, path, ev, o).from_cache);
  CHECK(load_or_compute_real_stats(*comm, path, ev, o).from_cache);
  // Another evaluator has its own cache; another subset size is a miss.
  auto other = testing::tiny_evaluator(1);
  CHECK(default_cache_path(path, other) != cache);
  CHECK_FALSE(load_or_compute_real_stats(*comm, path, other, o).from_cache);
  o.max_features = 100;
  CHECK_FALSE(load_or_compute_real_stats(*comm, path, ev, o).from_cache);
}

TEST_CASE("sanity: real vs real is small, noise vs real is large; n <= d is refused") {
  TempDir dir;
  auto comm = make_serial_communicator();
  auto ev = testing::tiny_evaluator(0);
  testing::write_synthetic_dataset(dir.file("train.h5"), 600, 2, 11);
  testing::write_synthetic_dataset(dir.file("test.h5"), 300, 1, 12);
  const auto real = load_or_compute_real_stats(*comm, dir.file("train.h5"), ev, {});
  EvalOptions o;
  o.n = 300;
  const auto same =
      evaluate_images(*comm, dataset_source(dir.file("test.h5"), 300, 0), "test", ev, real, o);
  const auto noise =
      evaluate_images(*comm, uniform_noise_source(ev.config(), 0), "noise", ev, real, o);
  INFO(format_table(same) << format_table(noise));
  CHECK(same.n == 300);
  CHECK(same.n_real == 600);
  CHECK(same.n_real_subset == 300);
  CHECK(same.fid_parties.size() == 2);
  CHECK(noise.fid_all > 20 * same.fid_all);
  CHECK(noise.kid > 20 * std::abs(same.kid));
  CHECK(same.precision > 0.8);
  CHECK(same.recall > 0.8);
  CHECK(noise.precision < 0.05);
  CHECK_THAT(to_json(same), Contains("\"n\": 300") &&
                                Contains("\"evaluator_checksum\": \"" + ev.checksum() + "\""));
  o.n = 8;
  CHECK_THROWS_WITH(
      evaluate_images(*comm, uniform_noise_source(ev.config(), 0), "noise", ev, real, o),
      Contains("--n 8: FID is undefined") && Contains("use --n 9 or more"));
  auto other = testing::tiny_evaluator(1);
  o.n = 50;
  CHECK_THROWS_WITH(
      evaluate_images(*comm, uniform_noise_source(other.config(), 0), "noise", other, real, o),
      Contains("come from another evaluator"));
}

TEST_CASE("generator evaluation: deterministic for a seed, training mode restored") {
  TempDir dir;
  auto comm = make_serial_communicator();
  auto ev = testing::tiny_evaluator(0);
  testing::write_synthetic_dataset(dir.file("train.h5"), 300, 1, 11);
  const auto real = load_or_compute_real_stats(*comm, dir.file("train.h5"), ev, {});
  ModelConfig model = ModelConfig::parse("dcgan c=1 s=28 z=8 gw=4 dw=4 k=3 dn=batch");
  torch::manual_seed(0);
  Gan gan(model);
  gan.train(true);
  EvalOptions o;
  o.n = 100;
  o.batch = 30;  // batches that straddle the latent blocks
  const auto a = evaluate_generator(*comm, gan.generator(), model, ev, real, o);
  CHECK(gan.generator().is_training());
  o.batch = 100;
  const auto b = evaluate_generator(*comm, gan.generator(), model, ev, real, o);
  CHECK(a.fid_all == Approx(b.fid_all).epsilon(1e-6));
  CHECK(a.kid == Approx(b.kid).epsilon(1e-6));
  o.seed = 1;
  CHECK(evaluate_generator(*comm, gan.generator(), model, ev, real, o).fid_all != a.fid_all);

  model.image_size = 32;
  Gan big(model);
  CHECK_THROWS_WITH(evaluate_generator(*comm, big.generator(), model, ev, real, o, "big.h5"),
                    Contains("big.h5: images are 1x32x32 but the evaluator expects 1x28x28"));
}
