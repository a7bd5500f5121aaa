// Writes the bad (and a few good) input files the `fedgan prepare` error tests feed it:
// IDX directories (missing, truncated, wrong magic) and HDF5 files (no /images, labels of the
// wrong length, unsupported image type and rank, a small valid file).
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <vector>

#include "fedgan/io/hdf5.hpp"

namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

namespace {

Bytes idx(unsigned char rank, const std::vector<std::uint32_t>& dims, std::size_t data_bytes) {
  Bytes out = {0, 0, 0x08, rank};
  for (auto d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back((d >> shift) & 0xff);
  out.resize(out.size() + data_bytes, 3);
  return out;
}

void write_plain(const fs::path& path, const Bytes& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

void write_gz(const fs::path& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

void write_h5(const fs::path& path, const torch::Tensor& images, const std::string& key,
              const torch::Tensor& labels) {
  fedgan::h5::File f(path.string(), fedgan::h5::File::Mode::Create);
  f.write(key, images);
  if (labels.defined()) f.write("/labels", labels);
  f.close();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_bad_inputs DIR\n";
    return 2;
  }
  const fs::path dir(argv[1]);
  fs::remove_all(dir);
  for (auto sub : {"idx_missing", "idx_truncated", "idx_magic"}) fs::create_directories(dir / sub);
  const auto labels = idx(1, {10}, 10);
  // Header promises 10 images of 28x28; only 100 data bytes follow.
  write_gz(dir / "idx_truncated/train-images-idx3-ubyte.gz", idx(3, {10, 28, 28}, 100));
  write_gz(dir / "idx_truncated/train-labels-idx1-ubyte.gz", labels);
  // A labels file (magic 0x00000801) where the images belong.
  write_plain(dir / "idx_magic/train-images-idx3-ubyte", labels);
  write_plain(dir / "idx_magic/train-labels-idx1-ubyte", labels);

  const auto u8 = torch::zeros({10, 1, 4, 4}, torch::kUInt8);
  const auto ten = torch::arange(10, torch::kInt64).remainder(2);
  write_h5(dir / "no_images.h5", u8, "/pixels", ten);
  write_h5(dir / "labels_length.h5", u8, "/images", torch::zeros({9}, torch::kInt64));
  write_h5(dir / "bad_type.h5", torch::zeros({10, 1, 4, 4}, torch::kInt64), "/images", ten);
  write_h5(dir / "bad_rank.h5", torch::zeros({10, 16}, torch::kUInt8), "/images", ten);
  write_h5(dir / "small.h5", u8, "/images", ten);
  write_h5(dir / "existing.h5", u8, "/images", ten);
  return 0;
}
