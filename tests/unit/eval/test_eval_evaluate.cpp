// Evaluation end to end on the serial communicator: real statistics (pooled = merged parties),
// their cache (reused, recomputed when the dataset or the evaluator changes), the sanity figures
// (real vs real small, noise large), generator evaluation (deterministic, mode restored) and
// figures identical at any thread count.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "fedgan/core/error.hpp"
#include "fedgan/data/shard_loader.hpp"
#include "fedgan/eval/chunked.hpp"
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
  auto comm = comm::make_serial_communicator();
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
  CHECK(torch::equal(merged.outer, s.all.outer));  // merged in the same order
  CHECK(s.features.sizes() == torch::IntArrayRef({200, 8}));
  // Each party (rows k, k+3, ...: 100 rows) is one chunk: its statistics are those of one
  // single-threaded forward of its rows, to the last digit, and every subset row is one of them.
  h5::File f(path, h5::File::Mode::Read);
  const auto images = data::to_unit_range(f.read("/images"));
  std::vector<torch::Tensor> parts;
  {
    SingleThreadScope single_thread;
    for (std::int64_t k = 0; k < 3; ++k) {
      parts.push_back(ev.features(images.index_select(0, torch::arange(k, 300, 3)), path, 256));
      const auto one = FeatureStats::of(parts.back());
      CHECK(s.parties[static_cast<std::size_t>(k)].count == 100);
      CHECK(torch::equal(one.sum, s.parties[static_cast<std::size_t>(k)].sum));
      CHECK(torch::equal(one.outer, s.parties[static_cast<std::size_t>(k)].outer));
    }
  }
  const auto all = torch::cat(parts);
  CHECK((s.features.unsqueeze(1) == all.unsqueeze(0)).all(2).any(1).all().item<bool>());

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
  auto comm = comm::make_serial_communicator();
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
  auto comm = comm::make_serial_communicator();
  auto ev = testing::tiny_evaluator(0);
  testing::write_synthetic_dataset(dir.file("train.h5"), 300, 1, 11);
  const auto real = load_or_compute_real_stats(*comm, dir.file("train.h5"), ev, {});
  models::ModelConfig model =
      models::ModelConfig::parse("dcgan c=1 s=28 z=8 gw=4 dw=4 k=3 dn=batch");
  torch::manual_seed(0);
  models::Gan gan(model);
  gan.train(true);
  EvalOptions o;
  o.n = 100;
  o.chunk = 30;  // 4 chunks, the last of 10
  const auto a = evaluate_generator(*comm, gan.generator(), model, ev, real, o);
  CHECK(gan.generator().is_training());
  const auto again = evaluate_generator(*comm, gan.generator(), model, ev, real, o);
  CHECK(again.fid_all == a.fid_all);
  CHECK(again.kid == a.kid);
  CHECK(again.precision == a.precision);
  // Other chunks hold the same samples (latent vectors are seeded per sample block), but their
  // forwards may round otherwise in float32: equal to float32 rounding (a wrong latent vector or
  // label would move FID by percent, not parts per million).
  o.chunk = 100;
  const auto b = evaluate_generator(*comm, gan.generator(), model, ev, real, o);
  CHECK(a.fid_all == Approx(b.fid_all).epsilon(1e-4));
  CHECK(a.kid == Approx(b.kid).epsilon(1e-4));
  o.chunk = 0;
  CHECK_THROWS_WITH(evaluate_generator(*comm, gan.generator(), model, ev, real, o),
                    Contains("chunk size must be positive"));
  o.chunk = 30;
  o.seed = 1;
  CHECK(evaluate_generator(*comm, gan.generator(), model, ev, real, o).fid_all != a.fid_all);

  model.image_size = 32;
  models::Gan big(model);
  CHECK_THROWS_WITH(evaluate_generator(*comm, big.generator(), model, ev, real, o, "big.h5"),
                    Contains("big.h5: images are 1x32x32 but the evaluator expects 1x28x28"));
}

TEST_CASE("evaluation does not depend on the thread count") {
  TempDir dir;
  auto comm = comm::make_serial_communicator();
  auto ev = testing::tiny_evaluator(0);
  const auto path = dir.file("train.h5");
  testing::write_synthetic_dataset(path, 250, 3, 13);  // parties of 84, 83, 83 rows
  RealStatsOptions ro;
  ro.max_features = 120;
  ro.chunk = 32;  // 3 chunks per party, the last short
  ro.use_cache = false;
  models::ModelConfig model =
      models::ModelConfig::parse("dcgan c=1 s=28 z=8 gw=4 dw=4 k=3 dn=batch");
  torch::manual_seed(0);
  models::Gan gan(model);
  EvalOptions o;
  o.n = 150;
  o.chunk = 32;  // 5 chunks, the last of 22
  const int previous = at::get_num_threads();
  const auto run = [&](int threads) {
    at::set_num_threads(threads);
    const auto real = compute_real_stats(*comm, path, ev, ro);
    const auto r = evaluate_generator(*comm, gan.generator(), model, ev, real, o);
    CHECK(at::get_num_threads() == threads);  // restored after the single-threaded work
    return std::make_pair(real, r);
  };
  const auto [real1, r1] = run(1);
  const auto [real3, r3] = run(3);
  at::set_num_threads(previous);
  CHECK(torch::equal(real1.all.outer, real3.all.outer));
  CHECK(torch::equal(real1.all.sum, real3.all.sum));
  CHECK(torch::equal(real1.features, real3.features));
  CHECK(r1.fid_all == r3.fid_all);
  CHECK(r1.fid_parties == r3.fid_parties);
  CHECK(r1.kid == r3.kid);
  CHECK(r1.precision == r3.precision);
  CHECK(r1.recall == r3.recall);
  CHECK(std::isfinite(r1.kid));
}
