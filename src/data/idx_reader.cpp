// IDX parsing through zlib's gz* functions (see include/fedgan/data/idx_reader.hpp).
#include "fedgan/data/idx_reader.hpp"

#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <sstream>

#include "fedgan/core/error.hpp"

namespace fedgan::data {
namespace {

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Reads up to `bytes` bytes; returns how many were read (fewer at the end of the file).
std::size_t read_some(gzFile f, void* out, std::size_t bytes, const std::string& path) {
  auto* p = static_cast<unsigned char*>(out);
  std::size_t done = 0;
  while (done < bytes) {
    const auto chunk = static_cast<unsigned>(std::min<std::size_t>(bytes - done, 1u << 30));
    const int got = gzread(f, p + done, chunk);
    if (got < 0) {
      int code = 0;
      throw Error(path + ": cannot read (corrupt gzip stream?): " + gzerror(f, &code));
    }
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return done;
}

std::string hex(std::uint32_t v) {
  std::ostringstream s;
  s << "0x" << std::hex;
  s.width(8);
  s.fill('0');
  s << v;
  return s.str();
}

// The file with or without ".gz"; the .gz name when neither exists (for the message).
std::string find_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  const auto gz = (fs::path(dir) / (stem + ".gz")).string();
  const auto plain = (fs::path(dir) / stem).string();
  if (fs::exists(gz)) return gz;
  if (fs::exists(plain)) return plain;
  throw Error(dir + ": missing Fashion-MNIST file " + stem +
              "(.gz); install the Debian package "
              "dataset-fashion-mnist or pass --source DIR with the IDX files");
}

}  // namespace

torch::Tensor read_idx(const std::string& path, int expected_rank) {
  GzFile f(gzopen(path.c_str(), "rb"));
  if (!f) throw Error(path + ": cannot open the IDX file (missing or not readable)");
  unsigned char header[4] = {0, 0, 0, 0};
  const std::size_t got = read_some(f.get(), header, 4, path);
  const std::uint32_t magic = (std::uint32_t{header[0]} << 24) | (std::uint32_t{header[1]} << 16) |
                              (std::uint32_t{header[2]} << 8) | header[3];
  const std::uint32_t expected = 0x0800u | static_cast<std::uint32_t>(expected_rank);
  if (got < 4)
    throw Error(path + ": truncated IDX file (" + std::to_string(got) +
                " bytes, shorter than the 4-byte magic number)");
  if (magic != expected)
    throw Error(path + ": not an unsigned-byte IDX file of rank " + std::to_string(expected_rank) +
                " (magic " + hex(magic) + ", expected " + hex(expected) + ")");
  std::vector<std::int64_t> dims(static_cast<std::size_t>(expected_rank));
  std::int64_t total = 1;
  for (auto& d : dims) {
    unsigned char b[4];
    if (read_some(f.get(), b, 4, path) < 4)
      throw Error(path + ": truncated IDX file (the header ends inside the dimensions)");
    d = (std::int64_t{b[0]} << 24) | (std::int64_t{b[1]} << 16) | (std::int64_t{b[2]} << 8) | b[3];
    total *= d;
  }
  auto out = torch::empty(dims, torch::kUInt8);
  const std::size_t data =
      read_some(f.get(), out.data_ptr(), static_cast<std::size_t>(total), path);
  if (data < static_cast<std::size_t>(total))
    throw Error(path + ": truncated IDX file (header promises " + std::to_string(total) +
                " data bytes, found " + std::to_string(data) + ")");
  unsigned char extra = 0;
  if (read_some(f.get(), &extra, 1, path) != 0)
    throw Error(path + ": trailing bytes after the " + std::to_string(total) +
                " data bytes the IDX header promises (wrong or corrupt file?)");
  return out;
}

const ChoiceTable<Choice<Split>>& splits() {
  static const Choice<Split> entries[] = {
      {Split::Train, "train", "60000 images"},
      {Split::Test, "test", "10000 images"},
  };
  static const ChoiceTable<Choice<Split>> table(entries, "--split", "split");
  return table;
}

Split parse_split(const std::string& name) { return splits().parse(name).value; }
std::string to_string(Split split) { return splits().name(split); }

Dataset load_fashion_mnist(const std::string& dir, Split split) {
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  const auto images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const auto labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  Dataset data;
  data.images = read_idx(images_path, 3).unsqueeze(1);
  data.labels = read_idx(labels_path, 1).to(torch::kInt64);
  data.name = "fashion-mnist-" + to_string(split);
  data.num_classes = 10;
  data.source = dir;
  require(data.labels.size(0) == data.images.size(0),
          labels_path + ": " + std::to_string(data.labels.size(0)) + " labels, but " + images_path +
              " holds " + std::to_string(data.images.size(0)) + " images");
  check_dataset(data, labels_path);
  return data;
}

}  // namespace fedgan::data
