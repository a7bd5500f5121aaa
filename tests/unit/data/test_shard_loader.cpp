// ShardLoader: a party gets exactly its rows, as float [-1,1]; batches are a deterministic,
// complete shuffle per (seed, party, epoch); bad files fail clearly; load time is measured.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <set>

#include "fedgan/core/error.hpp"
#include "fedgan/data/dataset_file.hpp"
#include "fedgan/data/idx_reader.hpp"
#include "fedgan/data/shard_loader.hpp"
#include "fedgan/io/hdf5.hpp"
#include "temp_dir.hpp"

using namespace fedgan;
using Catch::Matchers::Contains;
using fedgan::testing::TempDir;

namespace {

// n images [n,1,4,4]: image i holds the pixel value i % 251 at [0,0] and 7 elsewhere.
data::Dataset numbered_dataset(std::int64_t n, std::int64_t classes) {
  data::Dataset d;
  d.images = torch::full({n, 1, 4, 4}, 7, torch::kUInt8);
  d.images.select(2, 0).select(2, 0).copy_(torch::arange(n).remainder(251).view({n, 1}));
  d.labels = torch::arange(n, torch::kInt64).remainder(classes);
  d.num_classes = classes;
  d.name = "numbered";
  return d;
}

std::string write_partitioned(const TempDir& dir, const data::Dataset& d, int parties,
                              data::PartyIndices* out = nullptr) {
  data::PartitionRecipe r;
  r.method = data::PartitionMethod::Dirichlet;
  r.alpha = 1.0;
  r.parties = parties;
  const auto p = data::partition(d.labels_vector(), d.num_classes, r);
  const auto path = dir.file("parties.h5");
  data::write_dataset_file(path, d, p, r, "");
  if (out) *out = p;
  return path;
}

}  // namespace

TEST_CASE("ShardLoader loads exactly its party's rows as float [-1,1]", "[data][loader]") {
  TempDir dir;
  const auto d = numbered_dataset(200, 5);
  data::PartyIndices parties;
  const auto path = write_partitioned(dir, d, 4, &parties);
  std::int64_t total = 0;
  for (int k = 0; k < 4; ++k) {
    data::ShardLoader loader(path, k, 11);
    const auto rows = torch::tensor(parties[static_cast<std::size_t>(k)], torch::kInt64);
    CHECK(loader.indices() == parties[static_cast<std::size_t>(k)]);
    REQUIRE(loader.size() == rows.numel());
    CHECK(loader.num_classes() == 5);
    CHECK(loader.image_shape() == std::vector<std::int64_t>{1, 4, 4});
    CHECK(loader.images().scalar_type() == torch::kFloat32);
    CHECK(torch::allclose(loader.images(),
                          d.images.index_select(0, rows).to(torch::kFloat32) / 127.5 - 1));
    CHECK(torch::equal(loader.labels(), d.labels.index_select(0, rows)));
    CHECK(loader.images().min().item<float>() >= -1.0f);
    CHECK(loader.images().max().item<float>() <= 1.0f);
    total += loader.size();
  }
  CHECK(total == 200);
  const auto ends = data::to_unit_range(torch::tensor({0, 255, 51}, torch::kUInt8));
  CHECK(ends[0].item<float>() == -1.0f);
  CHECK(ends[1].item<float>() == 1.0f);
  CHECK(ends[2].item<float>() == Approx(51 / 127.5 - 1));
}

TEST_CASE("epoch batches: a complete, deterministic shuffle per (seed, party, epoch)",
          "[data][loader]") {
  const std::int64_t n = 103;
  auto images = torch::arange(n).to(torch::kUInt8).view({n, 1, 1, 1});
  auto labels = torch::arange(n, torch::kInt64);
  data::ShardLoader loader(images, labels, n, 2, 5);

  auto order_of = [](const std::vector<data::Batch>& batches) {
    std::vector<std::int64_t> order;
    for (const auto& b : batches) {
      CHECK(b.images.is_contiguous());
      CHECK(b.images.size(0) == b.labels.size(0));
      // The image travels with its label: image value (label) / 127.5 - 1.
      CHECK(torch::allclose(b.images.flatten(), b.labels.to(torch::kFloat32) / 127.5 - 1));
      for (std::int64_t i = 0; i < b.labels.size(0); ++i)
        order.push_back(b.labels[i].item<std::int64_t>());
    }
    return order;
  };
  const auto e0 = order_of(loader.epoch_batches(0, 10, false));
  REQUIRE(e0.size() == static_cast<std::size_t>(n));
  CHECK(std::set<std::int64_t>(e0.begin(), e0.end()).size() == static_cast<std::size_t>(n));
  CHECK(e0 == order_of(loader.epoch_batches(0, 10, false)));
  CHECK(e0 != order_of(loader.epoch_batches(1, 10, false)));
  std::vector<std::int64_t> identity(e0.size());
  std::iota(identity.begin(), identity.end(), std::int64_t{0});
  CHECK(e0 != identity);
  // Another party or seed shuffles differently.
  CHECK(e0 != order_of(data::ShardLoader(images, labels, n, 3, 5).epoch_batches(0, 10, false)));
  CHECK(e0 != order_of(data::ShardLoader(images, labels, n, 2, 6).epoch_batches(0, 10, false)));

  const auto kept = loader.epoch_batches(0, 10, false);
  CHECK(kept.size() == 11);
  CHECK(kept.back().labels.size(0) == 3);
  const auto dropped = loader.epoch_batches(0, 10, true);
  CHECK(dropped.size() == 10);
  CHECK(dropped.back().labels.size(0) == 10);
  CHECK(loader.num_batches(10, true) == 10);
  CHECK(loader.num_batches(200, true) == 0);
  REQUIRE_THROWS_WITH(loader.epoch_batches(0, 0, false), Contains("batch size"));
}

TEST_CASE("ShardLoader rejects bad files naming the file", "[data][loader]") {
  TempDir dir;
  const auto path = write_partitioned(dir, numbered_dataset(50, 2), 3);
  REQUIRE_THROWS_WITH(data::ShardLoader(path, 3, 0),
                      Contains(path) && Contains("no party 3") && Contains("3 parties"));
  REQUIRE_THROWS_WITH(data::ShardLoader(dir.file("none.h5"), 0, 0), Contains("none.h5"));
  {
    h5::File f(dir.file("noimages.h5"), h5::File::Mode::Create);
    f.write("/labels", torch::zeros({3}, torch::kInt64));
  }
  REQUIRE_THROWS_WITH(data::ShardLoader(dir.file("noimages.h5"), 0, 0),
                      Contains("noimages.h5") && Contains("missing dataset /images"));
  {
    h5::File f(dir.file("noparties.h5"), h5::File::Mode::Create);
    f.write("/images", torch::zeros({3, 1, 2, 2}, torch::kUInt8));
  }
  REQUIRE_THROWS_WITH(data::ShardLoader(dir.file("noparties.h5"), 0, 0),
                      Contains("missing group /parties"));
}

TEST_CASE("a partition with shared, repeated or out-of-range rows is refused", "[data][loader]") {
  TempDir dir;
  data::PartyIndices parties;
  const auto path = write_partitioned(dir, numbered_dataset(50, 2), 3, &parties);
  REQUIRE_NOTHROW(data::check_partition(path));
  REQUIRE(!parties[0].empty());
  auto set_indices = [&](int party, std::vector<std::int64_t> rows) {
    h5::File f(path, h5::File::Mode::ReadWrite);
    f.write("/parties/" + std::to_string(party) + "/indices", torch::tensor(rows, torch::kInt64));
  };
  set_indices(2, {parties[0].back()});  // party 0's row
  REQUIRE_THROWS_WITH(
      data::check_partition(path),
      Contains(path) &&
          Contains("parties 0 and 2 both hold row " + std::to_string(parties[0].back())) &&
          Contains("disjoint"));
  set_indices(2, {40, 50});
  REQUIRE_THROWS_WITH(
      data::check_partition(path),
      Contains("/parties/2/indices holds row 50, outside the 50 rows") && Contains("(party 2)"));
  REQUIRE_THROWS_WITH(data::ShardLoader(path, 2, 0),
                      Contains("holds row 50") && Contains("party 2"));
  set_indices(2, {-3, 4});
  REQUIRE_THROWS_WITH(data::ShardLoader(path, 2, 0), Contains("holds row -3"));
  set_indices(2, {7, 7});
  REQUIRE_THROWS_WITH(data::ShardLoader(path, 2, 0), Contains("lists row 7 twice (party 2)"));
}

TEST_CASE("loading Fashion-MNIST parties is fast", "[data][loader][perf]") {
  if (!std::filesystem::exists(std::string(data::kFashionMnistDir) +
                               "/train-images-idx3-ubyte.gz")) {
    WARN("Fashion-MNIST is not installed; skipped");
    return;
  }
  TempDir dir;
  const auto d = data::load_fashion_mnist(data::kFashionMnistDir, data::Split::Train);
  const auto labels = d.labels_vector();
  auto time_load = [&](int parties, const std::string& method, bool compress) {
    data::PartitionRecipe r;
    r.method = data::parse_partition_method(method);
    r.alpha = 0.3;
    r.parties = parties;
    const auto path = dir.file(method + std::to_string(parties) + (compress ? "z" : "") + ".h5");
    data::write_dataset_file(path, d, data::partition(labels, 10, r), r, "", compress);
    const auto start = std::chrono::steady_clock::now();
    data::ShardLoader loader(path, 0, 0);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    WARN("load party 0 of " << parties << " (" << method << (compress ? ", compressed" : "")
                            << "): " << loader.size() << " images in " << s * 1000 << " ms");
    return s;
  };
  const double all = time_load(1, "iid", false);
  const double one = time_load(8, "dirichlet", false);
  const double compressed = time_load(8, "dirichlet", true);
  // "Well under a second" for all 60000; a generous bound keeps a loaded CI machine green.
  CHECK(all < 1.0);
  CHECK(one < 1.0);
  CHECK(compressed < 2.0);
}
