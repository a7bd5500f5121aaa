// IDX parsing on small files written here, gzipped and plain, and every kind of bad file.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <vector>

#include "fedgan/core/error.hpp"
#include "fedgan/data/idx_reader.hpp"
#include "temp_dir.hpp"

using namespace fedgan;
using Catch::Matchers::Contains;
using fedgan::testing::TempDir;

namespace {

std::vector<unsigned char> idx_bytes(const std::vector<std::uint32_t>& dims,
                                     const std::vector<unsigned char>& data) {
  std::vector<unsigned char> out = {0, 0, 0x08, static_cast<unsigned char>(dims.size())};
  for (auto d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back((d >> shift) & 0xff);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_plain(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

void write_gz(const std::string& path, const std::vector<unsigned char>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) ==
          static_cast<int>(bytes.size()));
  gzclose(f);
}

std::vector<unsigned char> ramp(std::size_t n) {
  std::vector<unsigned char> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>(i * 7 % 256);
  return v;
}

// A tiny Fashion-MNIST-like set: 6 images 3x2, labels 0..5 mod 3.
void write_fake_fashion(const std::string& dir, const std::string& prefix, bool gz) {
  auto write = gz ? write_gz : write_plain;
  const std::string ext = gz ? ".gz" : "";
  write(dir + "/" + prefix + "-images-idx3-ubyte" + ext, idx_bytes({6, 3, 2}, ramp(36)));
  write(dir + "/" + prefix + "-labels-idx1-ubyte" + ext, idx_bytes({6}, {0, 1, 2, 0, 1, 2}));
}

}  // namespace

TEST_CASE("read_idx reads plain and gzipped files alike", "[data][idx]") {
  TempDir dir;
  const auto bytes = idx_bytes({4, 3, 5}, ramp(60));
  write_plain(dir.file("a.idx"), bytes);
  write_gz(dir.file("a.idx.gz"), bytes);
  for (const auto& name : {"a.idx", "a.idx.gz"}) {
    auto t = data::read_idx(dir.file(name), 3);
    REQUIRE(t.sizes() == torch::IntArrayRef({4, 3, 5}));
    REQUIRE(t.scalar_type() == torch::kUInt8);
    const auto expected = ramp(60);
    for (int i = 0; i < 60; ++i) CHECK(t.flatten()[i].item<int>() == expected[i]);
  }
  CHECK(std::filesystem::file_size(dir.file("a.idx.gz")) != bytes.size());
}

TEST_CASE("read_idx rejects bad files with the file name and the reason", "[data][idx]") {
  TempDir dir;
  SECTION("missing") {
    REQUIRE_THROWS_WITH(data::read_idx(dir.file("none.gz"), 1),
                        Contains("none.gz") && Contains("cannot open"));
  }
  SECTION("shorter than the magic number") {
    write_gz(dir.file("short.gz"), {0, 0});
    REQUIRE_THROWS_WITH(data::read_idx(dir.file("short.gz"), 1),
                        Contains("short.gz") && Contains("truncated"));
  }
  SECTION("header ends inside the dimensions") {
    write_plain(dir.file("hdr"), {0, 0, 8, 3, 0, 0, 0, 2});
    REQUIRE_THROWS_WITH(data::read_idx(dir.file("hdr"), 3), Contains("truncated"));
  }
  SECTION("data shorter than the header promises") {
    auto bytes = idx_bytes({4, 3, 5}, ramp(60));
    bytes.resize(bytes.size() - 7);
    write_gz(dir.file("cut.gz"), bytes);
    REQUIRE_THROWS_WITH(
        data::read_idx(dir.file("cut.gz"), 3),
        Contains("cut.gz") && Contains("truncated") && Contains("60") && Contains("53"));
  }
  SECTION("wrong magic: a rank-1 file where images are expected") {
    write_plain(dir.file("labels"), idx_bytes({3}, {1, 2, 3}));
    REQUIRE_THROWS_WITH(data::read_idx(dir.file("labels"), 3), Contains("labels") &&
                                                                   Contains("magic 0x00000801") &&
                                                                   Contains("expected 0x00000803"));
  }
  SECTION("wrong magic: not an IDX file at all") {
    write_plain(dir.file("text"), {'h', 'e', 'l', 'l', 'o', '\n'});
    REQUIRE_THROWS_WITH(data::read_idx(dir.file("text"), 1), Contains("magic"));
  }
  SECTION("trailing bytes") {
    auto bytes = idx_bytes({3}, {1, 2, 3});
    bytes.push_back(9);
    write_plain(dir.file("long"), bytes);
    REQUIRE_THROWS_WITH(data::read_idx(dir.file("long"), 1), Contains("trailing"));
  }
}

TEST_CASE("load_fashion_mnist reads both splits, gzipped or plain", "[data][idx]") {
  TempDir dir;
  write_fake_fashion(dir.path(), "train", true);
  write_fake_fashion(dir.path(), "t10k", false);
  for (const auto& split : {"train", "test"}) {
    auto d = data::load_fashion_mnist(dir.path(), data::parse_split(split));
    REQUIRE(d.images.sizes() == torch::IntArrayRef({6, 1, 3, 2}));
    REQUIRE(d.labels.scalar_type() == torch::kInt64);
    CHECK(d.labels[4].item<std::int64_t>() == 1);
    CHECK(d.images[1][0][0][0].item<int>() == 6 * 7 % 256);
    CHECK(d.num_classes == 10);
  }
  REQUIRE_THROWS_WITH(data::parse_split("valid"), Contains("--split: unknown split 'valid'"));
}

TEST_CASE("load_fashion_mnist names a missing file and mismatched counts", "[data][idx]") {
  TempDir dir;
  REQUIRE_THROWS_WITH(data::load_fashion_mnist(dir.path(), data::Split::Train),
                      Contains(dir.path()) && Contains("train-images-idx3-ubyte") &&
                          Contains("dataset-fashion-mnist"));
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_bytes({6, 3, 2}, ramp(36)));
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_bytes({5}, {0, 1, 2, 3, 4}));
  REQUIRE_THROWS_WITH(data::load_fashion_mnist(dir.path(), data::Split::Train),
                      Contains("5 labels") && Contains("6 images"));
}

TEST_CASE("the installed Fashion-MNIST test split has 10000 balanced images", "[data][idx]") {
  if (!std::filesystem::exists(std::string(data::kFashionMnistDir) +
                               "/t10k-labels-idx1-ubyte.gz")) {
    WARN("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist); skipped");
    return;
  }
  auto d = data::load_fashion_mnist(data::kFashionMnistDir, data::Split::Test);
  REQUIRE(d.images.sizes() == torch::IntArrayRef({10000, 1, 28, 28}));
  auto hist = torch::bincount(d.labels);
  CHECK(hist.eq(1000).all().item<bool>());
}
