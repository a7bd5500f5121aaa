// ShardLoader (see include/fedgan/data/shard_loader.hpp).
#include "fedgan/data/shard_loader.hpp"

#include <numeric>

#include "fedgan/core/error.hpp"
#include "fedgan/data/dataset_file.hpp"
#include "fedgan/data/random.hpp"
#include "fedgan/io/hdf5.hpp"

namespace fedgan::data {

torch::Tensor to_unit_range(const torch::Tensor& images_uint8) {
  require(images_uint8.scalar_type() == torch::kUInt8, "to_unit_range: expected uint8 images");
  const auto in = images_uint8.contiguous();
  auto out = torch::empty(in.sizes(), torch::kFloat32);
  // One pass through a 256-entry table instead of convert, divide and subtract passes.
  float table[256];
  for (int v = 0; v < 256; ++v) table[v] = static_cast<float>(v) / 127.5f - 1.0f;
  const auto* src = in.data_ptr<std::uint8_t>();
  auto* dst = out.data_ptr<float>();
  at::parallel_for(0, in.numel(), 1 << 16, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) dst[i] = table[src[i]];
  });
  return out;
}

ShardLoader::ShardLoader(const std::string& path, int party, std::uint64_t seed)
    : m_party(party), m_seed(seed) {
  const auto info = read_dataset_info(path);
  require(party >= 0 && party < info.num_parties,
          path + ": no party " + std::to_string(party) + "; the file has " +
              std::to_string(info.num_parties) + " parties (0.." +
              std::to_string(info.num_parties - 1) + ")");
  // In range and each row once, with errors naming the party and the row (other parties' rows
  // are not read here; check_partition checks that parties are disjoint).
  m_indices = read_party_indices(path, party, info.size);
  h5::File f(path, h5::File::Mode::Read);
  // Only this party's rows are read (a union of hyperslabs).
  m_source_uint8 = f.read_rows("/images", m_indices);
  m_images = to_unit_range(m_source_uint8);
  m_labels = info.has_labels
                 ? f.read_rows("/labels", m_indices)
                 : torch::zeros({static_cast<std::int64_t>(m_indices.size())}, torch::kInt64);
  require(m_labels.scalar_type() == torch::kInt64, path + ": /labels must be int64");
  m_num_classes = info.num_classes;
  if (m_labels.numel() > 0) {
    const auto lo = m_labels.min().item<std::int64_t>();
    const auto hi = m_labels.max().item<std::int64_t>();
    require(lo >= 0 && hi < m_num_classes,
            path + ": party " + std::to_string(party) + " has labels in [" + std::to_string(lo) +
                ", " + std::to_string(hi) +
                "], outside [0, num_classes = " + std::to_string(m_num_classes) + ")");
  }
}

ShardLoader::ShardLoader(torch::Tensor images, torch::Tensor labels, std::int64_t num_classes,
                         int party, std::uint64_t seed)
    : m_party(party), m_seed(seed), m_num_classes(num_classes) {
  require(images.dim() == 4, "ShardLoader: images must be [n,C,H,W]");
  require(labels.dim() == 1 && labels.size(0) == images.size(0),
          "ShardLoader: labels must be [n] with one label per image");
  if (images.scalar_type() == torch::kUInt8) m_source_uint8 = images.contiguous();
  m_images = images.scalar_type() == torch::kUInt8 ? to_unit_range(images)
                                                   : images.to(torch::kFloat32).contiguous();
  m_labels = labels.to(torch::kInt64).contiguous();
}

std::vector<std::int64_t> ShardLoader::image_shape() const {
  return {m_images.size(1), m_images.size(2), m_images.size(3)};
}

torch::Tensor ShardLoader::epoch_order(std::int64_t epoch) const {
  std::vector<std::int64_t> order(static_cast<std::size_t>(size()));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  Rng rng(
      derive_seed(m_seed, static_cast<std::uint64_t>(m_party), static_cast<std::uint64_t>(epoch)));
  rng.shuffle(order);
  return torch::tensor(order, torch::kInt64);
}

std::int64_t ShardLoader::num_batches(std::int64_t batch_size, bool drop_last) const {
  require(batch_size >= 1, "batch size must be at least 1, got " + std::to_string(batch_size));
  return drop_last ? size() / batch_size : (size() + batch_size - 1) / batch_size;
}

std::vector<Batch> ShardLoader::epoch_batches(std::int64_t epoch, std::int64_t batch_size,
                                              bool drop_last) const {
  const std::int64_t count = num_batches(batch_size, drop_last);
  torch::Tensor images, labels;
  if (m_device_images.defined()) {
    const auto order = epoch_order(epoch).to(m_device_images.device());
    images = m_device_images.index_select(0, order);
    if (images.scalar_type() == torch::kUInt8)
      images = m_device_table.index_select(0, images.flatten().to(torch::kInt64))
                   .view(images.sizes());
    labels = m_device_labels.index_select(0, order);
  } else {
    const auto order = epoch_order(epoch);
    images = m_images.index_select(0, order);
    labels = m_labels.index_select(0, order);
  }
  std::vector<Batch> batches;
  batches.reserve(static_cast<std::size_t>(count));
  for (std::int64_t b = 0; b < count; ++b) {
    const std::int64_t begin = b * batch_size;
    const std::int64_t length = std::min(batch_size, size() - begin);
    batches.push_back({images.narrow(0, begin, length), labels.narrow(0, begin, length)});
  }
  return batches;
}

void ShardLoader::to_device(const torch::Device& device) {
  if (device.is_cpu()) {
    m_device_images = m_device_labels = m_device_table = torch::Tensor();
    return;
  }
  m_device_images = (m_source_uint8.defined() ? m_source_uint8 : m_images).to(device);
  m_device_labels = m_labels.to(device);
  m_device_table =
      to_unit_range(torch::arange(256, torch::TensorOptions().dtype(torch::kInt64))
                        .to(torch::kUInt8))
          .to(device);
}

}  // namespace fedgan::data
