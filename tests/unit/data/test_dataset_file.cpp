// Dataset files: the written schema round trip, validation and conversion of a user's HDF5 file,
// class subsets, and the prepare pipeline's guarantees (nothing written on error, --force).
#include <catch2/catch.hpp>
#include <filesystem>

#include "fedgan/core/error.hpp"
#include "fedgan/data/dataset_file.hpp"
#include "fedgan/data/prepare.hpp"
#include "fedgan/io/hdf5.hpp"
#include "temp_dir.hpp"

using namespace fedgan;
using Catch::Matchers::Contains;
using fedgan::testing::TempDir;

namespace {

// n images [n,1,2,3] whose pixels all equal the image's row number, labels i % classes.
data::Dataset small_dataset(std::int64_t n, std::int64_t classes) {
  data::Dataset d;
  d.images = torch::arange(n, torch::kInt64)
                 .to(torch::kUInt8)
                 .view({n, 1, 1, 1})
                 .expand({n, 1, 2, 3})
                 .contiguous();
  d.labels = torch::arange(n, torch::kInt64).remainder(classes);
  d.num_classes = classes;
  d.name = "small";
  d.source = "memory";
  return d;
}

void write_user_file(const std::string& path, const torch::Tensor& images,
                     const torch::Tensor& labels = {}, const std::string& key = "/images") {
  h5::File f(path, h5::File::Mode::Create);
  f.write(key, images);
  if (labels.defined()) f.write("/labels", labels);
  f.close();
}

}  // namespace

TEST_CASE("write_dataset_file writes the DESIGN.md schema", "[data][dataset_file]") {
  TempDir dir;
  const auto d = small_dataset(20, 4);
  data::PartitionRecipe r;
  r.method = data::PartitionMethod::Dirichlet;
  r.parties = 3;
  r.alpha = 0.7;
  r.seed = 42;
  const auto parties = data::partition(d.labels_vector(), d.num_classes, r);
  const auto path = dir.file("d.h5");
  data::write_dataset_file(path, d, parties, r, "the table");

  h5::File f(path, h5::File::Mode::Read);
  CHECK(torch::equal(f.read("/images"), d.images));
  CHECK(torch::equal(f.read("/labels"), d.labels));
  CHECK(f.attr_string("/", "name") == "small");
  CHECK(f.attr_int("/", "num_classes") == 4);
  CHECK(f.attr_int("/parties", "num_parties") == 3);
  CHECK(f.attr_string("/parties", "method") == "dirichlet");
  CHECK(f.attr_double("/parties", "alpha") == 0.7);
  CHECK(f.attr_int("/parties", "seed") == 42);
  CHECK(f.attr_string("/parties", "table") == "the table");
  const auto counts = data::class_counts(parties, d.labels_vector(), 4);
  for (std::size_t k = 0; k < 3; ++k) {
    const auto base = "/parties/" + std::to_string(k);
    CHECK(torch::equal(f.read(base + "/indices"), torch::tensor(parties[k], torch::kInt64)));
    CHECK(torch::equal(f.read(base + "/class_counts"), torch::tensor(counts[k], torch::kInt64)));
  }
  const auto info = data::read_dataset_info(path);
  CHECK(info.size == 20);
  CHECK(info.num_parties == 3);
  CHECK(info.image_shape == std::vector<std::int64_t>{1, 2, 3});
}

TEST_CASE("a user's HDF5 file: uint8, [N,H,W], float [0,1] and [-1,1]", "[data][dataset_file]") {
  TempDir dir;
  const auto path = dir.file("user.h5");
  SECTION("uint8 [N,C,H,W] with labels is taken as is") {
    const auto d = small_dataset(6, 3);
    write_user_file(path, d.images, d.labels);
    const auto got = data::read_hdf5_dataset(path);
    CHECK(torch::equal(got.images, d.images));
    CHECK(torch::equal(got.labels, d.labels));
    CHECK(got.num_classes == 3);
    CHECK(got.conversion == "none");
    CHECK(got.name == "user");
  }
  SECTION("[N,H,W] becomes one channel; no labels means class 0; another images key") {
    write_user_file(path, torch::zeros({5, 4, 4}, torch::kUInt8), {}, "/data/x");
    const auto got = data::read_hdf5_dataset(path, "data/x");
    CHECK(got.images.sizes() == torch::IntArrayRef({5, 1, 4, 4}));
    CHECK(got.labels.eq(0).all().item<bool>());
    CHECK(got.num_classes == 1);
  }
  SECTION("float32 in [0,1]") {
    write_user_file(path, torch::tensor({0.0f, 0.5f, 1.0f, 0.2f}).view({1, 1, 2, 2}));
    const auto got = data::read_hdf5_dataset(path);
    CHECK(torch::equal(got.images.flatten(), torch::tensor({0, 128, 255, 51}, torch::kUInt8)));
    CHECK_THAT(got.conversion, Contains("[0,1]"));
  }
  SECTION("float64 in [-1,1]") {
    write_user_file(path, torch::tensor({-1.0, 0.0, 1.0, -0.5}).view({1, 1, 2, 2}));
    const auto got = data::read_hdf5_dataset(path);
    CHECK(torch::equal(got.images.flatten(), torch::tensor({0, 128, 255, 64}, torch::kUInt8)));
    CHECK_THAT(got.conversion, Contains("[-1,1]"));
  }
}

TEST_CASE("a bad user HDF5 file fails naming the file and the fault", "[data][dataset_file]") {
  TempDir dir;
  const auto path = dir.file("bad.h5");
  SECTION("missing file") {
    REQUIRE_THROWS_WITH(data::read_hdf5_dataset(dir.file("none.h5")),
                        Contains("none.h5") && Contains("no such file"));
  }
  SECTION("missing /images") {
    write_user_file(path, torch::zeros({2, 1, 2, 2}, torch::kUInt8), {}, "/pixels");
    REQUIRE_THROWS_WITH(data::read_hdf5_dataset(path), Contains(path) &&
                                                           Contains("missing dataset /images") &&
                                                           Contains("--images-key"));
  }
  SECTION("labels of the wrong length") {
    write_user_file(path, torch::zeros({4, 1, 2, 2}, torch::kUInt8),
                    torch::zeros({3}, torch::kInt64));
    REQUIRE_THROWS_WITH(data::read_hdf5_dataset(path),
                        Contains(path) && Contains("/labels holds 3 labels for 4 images"));
  }
  SECTION("float labels") {
    write_user_file(path, torch::zeros({2, 1, 2, 2}, torch::kUInt8), torch::zeros({2}));
    REQUIRE_THROWS_WITH(data::read_hdf5_dataset(path), Contains("integer class ids"));
  }
  SECTION("images of an unsupported type") {
    write_user_file(path, torch::zeros({2, 1, 2, 2}, torch::kInt64));
    REQUIRE_THROWS_WITH(data::read_hdf5_dataset(path),
                        Contains(path) && Contains("element type Long") && Contains("uint8"));
  }
  SECTION("images of an unsupported rank") {
    write_user_file(path, torch::zeros({2, 4}, torch::kUInt8));
    REQUIRE_THROWS_WITH(data::read_hdf5_dataset(path), Contains("rank 2") && Contains("[N,C,H,W]"));
  }
  SECTION("channels last") {
    write_user_file(path, torch::zeros({2, 8, 8, 3}, torch::kUInt8));
    REQUIRE_THROWS_WITH(data::read_hdf5_dataset(path), Contains("[N,H,W,C]"));
  }
  SECTION("float images outside [0,1] and [-1,1]") {
    write_user_file(path, torch::full({1, 1, 2, 2}, 255.0f));
    REQUIRE_THROWS_WITH(data::read_hdf5_dataset(path), Contains("[0,1] or [-1,1]"));
  }
  SECTION("not a dataset file for the loader: no /parties") {
    write_user_file(path, torch::zeros({2, 1, 2, 2}, torch::kUInt8));
    REQUIRE_THROWS_WITH(data::read_dataset_info(path), Contains("/parties"));
  }
}

TEST_CASE("select_classes keeps original ids and rejects unknown ones", "[data][dataset_file]") {
  const auto d = small_dataset(30, 5);
  const auto kept = data::select_classes(d, {4, 1});
  CHECK(kept.size() == 12);
  CHECK(kept.num_classes == 5);
  CHECK(kept.classes == "4,1");
  CHECK(((kept.labels == 1) | (kept.labels == 4)).all().item<bool>());
  // Images travel with their labels (pixel value = original row).
  CHECK(torch::equal(
      kept.images.select(1, 0).select(1, 0).select(1, 0).to(torch::kInt64).remainder(5),
      kept.labels));
  REQUIRE_THROWS_WITH(data::select_classes(d, {1, 5}),
                      Contains("unknown class id 5") && Contains("0..4"));
  REQUIRE_THROWS_WITH(data::select_classes(d, {-1}), Contains("unknown class id -1"));
  REQUIRE_THROWS_WITH(data::select_classes(d, {2, 2}), Contains("listed twice"));
}

TEST_CASE("prepare writes nothing on error and overwrites only with --force", "[data][prepare]") {
  TempDir dir;
  const auto source = dir.file("in.h5");
  const auto d = small_dataset(40, 4);
  write_user_file(source, d.images, d.labels);
  data::PrepareConfig c;
  c.dataset = data::DatasetSource::Hdf5;
  c.source = source;
  c.out = dir.file("out.h5");
  c.partition.parties = 4;
  c.partition.method = data::PartitionMethod::Shards;
  c.classes = {0, 2, 3};

  const auto result = data::run_prepare(c);
  CHECK(result.samples == 30);
  CHECK_THAT(result.table, Contains("total"));
  auto info = data::read_dataset_info(c.out);
  CHECK(info.num_parties == 4);
  CHECK(info.size == 30);

  // An existing file is kept without --force ...
  c.partition.parties = 2;
  REQUIRE_THROWS_WITH(data::run_prepare(c), Contains("exists") && Contains("--force"));
  CHECK(data::read_dataset_info(c.out).num_parties == 4);
  // ... and replaced with it.
  c.force = true;
  data::run_prepare(c);
  CHECK(data::read_dataset_info(c.out).num_parties == 2);

  // Bad inputs leave no file behind (and no temporary file).
  c.out = dir.file("never.h5");
  auto expect_nothing = [&](data::PrepareConfig bad, const std::string& message) {
    REQUIRE_THROWS_WITH(data::run_prepare(bad), Contains(message));
    CHECK_FALSE(std::filesystem::exists(bad.out));
  };
  auto bad = c;
  bad.partition.parties = 0;
  expect_nothing(bad, "--parties");
  bad = c;
  bad.partition.parties = 31;
  expect_nothing(bad, "exceeds the 30 samples");
  bad = c;
  bad.classes = {7};
  expect_nothing(bad, "unknown class id 7");
  // Unknown names stop at the parse (the CLI's edge), before anything is read.
  CHECK_THROWS_WITH(data::parse_partition_method("random"), Contains("unknown method 'random'"));
  CHECK_THROWS_WITH(data::dataset_sources().parse("cifar"),
                    Contains("--dataset: unknown dataset 'cifar'") && Contains("hdf5"));
  bad = c;
  bad.source = dir.file("missing.h5");
  expect_nothing(bad, "missing.h5");
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  CHECK(entries == 2);  // in.h5 and out.h5 only
}
