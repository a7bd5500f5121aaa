// Each rank loads its own parties of one dataset file and gets exactly those parties' images;
// across ranks every sample is held exactly once. Correct at any rank count.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "fedgan/data/dataset_file.hpp"
#include "fedgan/data/shard_loader.hpp"
#include "mpi_fixture.hpp"

using namespace fedgan;
using fedgan::testing::world;

TEST_CASE("ShardLoader: every rank reads its parties, and only those", "[mpi][data]") {
  auto& comm = world();
  constexpr std::int64_t kSamples = 300;
  constexpr int kParties = 4;
  // Image i carries i in its first two pixels (i % 256 and i / 256), so a row is identifiable.
  auto images = torch::zeros({kSamples, 1, 3, 3}, torch::kUInt8);
  const auto ids = torch::arange(kSamples, torch::kInt64);
  images.select(1, 0).select(1, 0).select(1, 0).copy_(ids.remainder(256));
  images.select(1, 0).select(1, 0).select(1, 1).copy_(ids.div(256, "floor"));
  data::Dataset d;
  d.images = images;
  d.labels = ids.remainder(3);
  d.num_classes = 3;
  data::PartitionRecipe recipe;
  recipe.method = data::PartitionMethod::Dirichlet;
  recipe.alpha = 0.5;
  recipe.parties = kParties;
  recipe.seed = 3;
  const auto parties = data::partition(d.labels_vector(), 3, recipe);

  std::string path;
  if (comm.is_root()) {
    path = (std::filesystem::temp_directory_path() /
            ("fedgan_mpi_shards_" + std::to_string(::getpid()) + ".h5"))
               .string();
    data::write_dataset_file(path, d, parties, recipe, "");
  }
  comm.broadcast(path, 0);
  comm.barrier();

  // Parties are not ranks: rank r hosts parties r, r + size, ... CHECK, not REQUIRE, below: a
  // rank leaving the test early would leave the others waiting in the allreduce.
  std::vector<std::int64_t> held(kSamples, 0);
  for (int k = comm.rank(); k < kParties; k += comm.size()) {
    data::ShardLoader loader(path, k, 0);
    const auto& expected = parties[static_cast<std::size_t>(k)];
    CHECK(loader.indices() == expected);
    CHECK(loader.size() == static_cast<std::int64_t>(expected.size()));
    // Decode each loaded image back to its row number.
    const auto pixels = ((loader.images() + 1) * 127.5).round().to(torch::kInt64);
    const auto row = pixels.select(1, 0).select(1, 0);
    const auto decoded = row.select(1, 0) + 256 * row.select(1, 1);
    CHECK(torch::equal(decoded, torch::tensor(expected, torch::kInt64)));
    CHECK(torch::equal(loader.labels(), decoded.remainder(3)));
    for (auto i : expected) ++held[static_cast<std::size_t>(i)];
  }
  comm.allreduce_sum(held.data(), held.size());
  CHECK(std::all_of(held.begin(), held.end(), [](std::int64_t c) { return c == 1; }));
  comm.barrier();
  if (comm.is_root()) std::filesystem::remove(path);
}
