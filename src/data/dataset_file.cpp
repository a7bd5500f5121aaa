// Reading and writing dataset files (see include/fedgan/data/dataset_file.hpp).
#include "fedgan/data/dataset_file.hpp"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "fedgan/core/error.hpp"
#include "fedgan/io/atomic_file.hpp"
#include "fedgan/io/hdf5.hpp"

namespace fedgan::data {
namespace {

std::string absolute_key(const std::string& key) {
  return key.rfind('/', 0) == 0 ? key : "/" + key;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

bool is_integer(torch::ScalarType t) {
  return t == torch::kUInt8 || t == torch::kInt8 || t == torch::kInt16 || t == torch::kInt32 ||
         t == torch::kInt64;
}

torch::Tensor read_labels(const h5::File& f, const std::string& key, std::int64_t n) {
  const auto shape = f.shape(key);
  const std::string where = f.path() + ": " + key;
  require(shape.size() == 1, where + " has shape " + shape_text(shape) + "; expected [" +
                                 std::to_string(n) + "], one label per image");
  require(shape[0] == n, where + " holds " + std::to_string(shape[0]) + " labels for " +
                             std::to_string(n) + " images; expected one label per image");
  const auto type = f.dtype(key);
  require(is_integer(type), where + " has element type " + std::string(c10::toString(type)) +
                                "; expected integer class ids");
  auto labels = f.read(key).to(torch::kInt64);
  if (n > 0) require(labels.min().item<std::int64_t>() >= 0, where + " holds negative class ids");
  return labels;
}

}  // namespace

torch::Tensor float_images_to_uint8(const torch::Tensor& images, const std::string& what,
                                    std::string* conversion) {
  auto x = images.to(torch::kFloat64);
  require(!x.isnan().any().item<bool>(), what + " contains NaN");
  const double lo = x.numel() ? x.min().item<double>() : 0;
  const double hi = x.numel() ? x.max().item<double>() : 0;
  if (lo >= 0 && hi <= 1) {
    if (conversion) *conversion = "float [0,1] -> uint8: round(x * 255)";
    return x.mul(255).round_().to(torch::kUInt8);
  }
  if (lo >= -1 && hi <= 1) {
    if (conversion) *conversion = "float [-1,1] -> uint8: round((x + 1) * 127.5)";
    return x.add(1).mul_(127.5).round_().to(torch::kUInt8);
  }
  std::ostringstream msg;
  msg << what << ": float images span [" << lo << ", " << hi
      << "]; expected values in [0,1] or [-1,1] (or uint8 images)";
  throw Error(msg.str());
}

Dataset read_hdf5_dataset(const std::string& path, const std::string& images_key,
                          const std::string& labels_key) {
  h5::File f(path, h5::File::Mode::Read);
  const std::string key = absolute_key(images_key);
  const std::string where = path + ": " + key;
  require(f.exists(key), path + ": missing dataset " + key +
                             " (expected the images, uint8 [N,C,H,W]; another name can be given "
                             "with --images-key)");
  auto shape = f.shape(key);
  const auto type = f.dtype(key);
  require(type == torch::kUInt8 || type == torch::kFloat32 || type == torch::kFloat64,
          where + " has element type " + std::string(c10::toString(type)) +
              "; expected uint8, or float32/float64 in [0,1] or [-1,1]");
  require(shape.size() == 3 || shape.size() == 4,
          where + " has rank " + std::to_string(shape.size()) + " " + shape_text(shape) +
              "; expected [N,C,H,W] (or [N,H,W] for one channel)");
  require(shape.size() == 3 || (shape[1] >= 1 && shape[1] <= 4),
          where + " has shape " + shape_text(shape) + ": " + std::to_string(shape[1]) +
              " channels; expected [N,C,H,W] with 1 to 4 channels (is it [N,H,W,C]?)");
  require(shape[0] >= 1, where + " holds no images");

  Dataset data;
  data.source = path;
  auto images = f.read(key);
  if (shape.size() == 3) images = images.unsqueeze(1);
  data.images =
      type == torch::kUInt8 ? images : float_images_to_uint8(images, where, &data.conversion);
  const std::string lkey = absolute_key(labels_key);
  const bool has_labels = f.exists(lkey);
  data.labels =
      has_labels ? read_labels(f, lkey, shape[0]) : torch::zeros({shape[0]}, torch::kInt64);
  const std::int64_t max_label = data.labels.max().item<std::int64_t>();
  data.num_classes = f.attr_int("/", "num_classes").value_or(max_label + 1);
  require(data.num_classes > max_label,
          path + ": attribute num_classes = " + std::to_string(data.num_classes) + " but " + lkey +
              " holds class id " + std::to_string(max_label));
  data.name = f.attr_string("/", "name").value_or(std::filesystem::path(path).stem().string());
  check_dataset(data, path);
  return data;
}

void write_dataset_file(const std::string& path, const Dataset& data, const PartyIndices& parties,
                        const PartitionRecipe& recipe, const std::string& table, bool compress) {
  check_dataset(data, path);
  const auto labels = data.labels_vector();
  io::write_atomically(path, [&](const std::string& temp) {
    h5::File f(temp, h5::File::Mode::Create);
    f.write("/images", data.images, compress);
    f.write("/labels", data.labels, compress);
    f.set_attr("/", "name", data.name);
    f.set_attr("/", "num_classes", data.num_classes);
    f.set_attr("/", "source", data.source);
    f.set_attr("/", "conversion", data.conversion);
    f.set_attr("/", "classes", data.classes);
    write_parties(f, parties, labels, data.num_classes, recipe, table);
    f.close();
  });
}

void write_parties(h5::File& f, const PartyIndices& parties,
                   const std::vector<std::int64_t>& labels, std::int64_t num_classes,
                   const PartitionRecipe& recipe, const std::string& table) {
  const auto counts = class_counts(parties, labels, num_classes);
  f.create_group("/parties");
  f.set_attr("/parties", "num_parties", static_cast<std::int64_t>(parties.size()));
  f.set_attr("/parties", "method", to_string(recipe.method));
  f.set_attr("/parties", "alpha", recipe.alpha);
  f.set_attr("/parties", "seed", static_cast<std::int64_t>(recipe.seed));
  f.set_attr("/parties", "shards_per_party", static_cast<std::int64_t>(recipe.shards_per_party));
  f.set_attr("/parties", "max_per_party", recipe.max_per_party);
  f.set_attr("/parties", "table", table);
  for (std::size_t k = 0; k < parties.size(); ++k) {
    const std::string group = "/parties/" + std::to_string(k);
    f.write(group + "/indices", torch::tensor(parties[k], torch::kInt64));
    f.write(group + "/class_counts", torch::tensor(counts[k], torch::kInt64));
  }
}

DatasetFileInfo read_dataset_info(const std::string& path) {
  h5::File f(path, h5::File::Mode::Read);
  DatasetFileInfo info;
  require(f.exists("/images"), path +
                                   ": missing dataset /images (expected uint8 [N,C,H,W]; "
                                   "`fedgan prepare` writes this schema)");
  const auto shape = f.shape("/images");
  const auto type = f.dtype("/images");
  require(type == torch::kUInt8 && shape.size() == 4,
          path + ": /images is " + std::string(c10::toString(type)) + " " + shape_text(shape) +
              "; expected uint8 [N,C,H,W] (convert the file with `fedgan prepare --dataset hdf5`)");
  info.size = shape[0];
  info.image_shape = {shape[1], shape[2], shape[3]};
  info.has_labels = f.exists("/labels");
  if (info.has_labels) {
    const auto lshape = f.shape("/labels");
    require(lshape.size() == 1 && lshape[0] == info.size,
            path + ": /labels has shape " + shape_text(lshape) + "; expected [" +
                std::to_string(info.size) + "], one label per image");
  }
  info.num_classes = f.attr_int("/", "num_classes").value_or(1);
  require(info.num_classes >= 1, path + ": attribute num_classes must be at least 1");
  info.name = f.attr_string("/", "name").value_or(std::filesystem::path(path).stem().string());
  require(f.exists("/parties"), path +
                                    ": missing group /parties (no partition; run `fedgan "
                                    "prepare` to split the data into parties)");
  const auto parties = f.attr_int("/parties", "num_parties");
  require(parties.has_value() && *parties >= 1,
          path + ": /parties needs an attribute num_parties >= 1");
  info.num_parties = static_cast<int>(*parties);
  return info;
}

std::vector<std::int64_t> read_party_indices(const std::string& path, int party,
                                             std::int64_t rows) {
  h5::File f(path, h5::File::Mode::Read);
  const std::string key = "/parties/" + std::to_string(party) + "/indices";
  require(f.exists(key), path + ": missing dataset " + key + " (party " + std::to_string(party) +
                             " of the partition)");
  const auto type = f.dtype(key);
  const auto shape = f.shape(key);
  require(shape.size() == 1 && type == torch::kInt64 && shape[0] > 0,
          path + ": " + key + " is " + std::string(c10::toString(type)) + " " + shape_text(shape) +
              "; expected a non-empty int64 vector of row indices");
  auto idx = f.read(key);
  std::vector<std::int64_t> out(idx.data_ptr<std::int64_t>(),
                                idx.data_ptr<std::int64_t>() + idx.numel());
  std::vector<std::int64_t> sorted = out;
  std::sort(sorted.begin(), sorted.end());
  require(sorted.front() >= 0 && sorted.back() < rows,
          path + ": " + key + " holds row " +
              std::to_string(sorted.front() < 0 ? sorted.front() : sorted.back()) +
              ", outside the " + std::to_string(rows) + " rows of /images [0, " +
              std::to_string(rows) + ") (party " + std::to_string(party) + ")");
  const auto twice = std::adjacent_find(sorted.begin(), sorted.end());
  require(twice == sorted.end(), path + ": " + key + " lists row " +
                                     (twice == sorted.end() ? "" : std::to_string(*twice)) +
                                     " twice (party " + std::to_string(party) +
                                     "); a party holds each row once");
  return out;
}

void check_partition(const std::string& path) {
  const auto info = read_dataset_info(path);
  // owner[row] = party + 1 of the party holding the row, 0 for none.
  std::vector<std::int32_t> owner(static_cast<std::size_t>(info.size), 0);
  for (int k = 0; k < info.num_parties; ++k) {
    const auto rows = read_party_indices(path, k, info.size);
    for (const auto row : rows) {
      auto& o = owner[static_cast<std::size_t>(row)];
      require(o == 0, path + ": parties " + std::to_string(o - 1) + " and " + std::to_string(k) +
                          " both hold row " + std::to_string(row) + " (/parties/" +
                          std::to_string(k) +
                          "/indices); parties must hold disjoint rows (re-run "
                          "`fedgan prepare`)");
      o = k + 1;
    }
  }
}

}  // namespace fedgan::data
