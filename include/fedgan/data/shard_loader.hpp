// ShardLoader: one party's samples, read from the dataset file (only that party's rows), held
// in memory as float [-1,1] images, and served as shuffled batches, one permutation per epoch
// from a (seed, party, epoch) generator, so every run and every rank count gives the same order.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fedgan::data {

struct Batch {
  torch::Tensor images;  // float32 [b, C, H, W] in [-1, 1]
  torch::Tensor labels;  // int64 [b]
};

class ShardLoader {
 public:
  // Reads party `party` of the dataset file at `path` (fedgan::Error naming the file for a
  // missing file, a schema violation or a party the file does not have).
  ShardLoader(const std::string& path, int party, std::uint64_t seed);
  // In-memory data (for tests and synthetic runs): uint8 [n,C,H,W] images (or float already in
  // [-1,1]) and int64 [n] labels.
  ShardLoader(torch::Tensor images, torch::Tensor labels, std::int64_t num_classes, int party,
              std::uint64_t seed);

  int party() const { return m_party; }
  // Samples held: the FedAvg weight n_k.
  std::int64_t size() const { return m_images.size(0); }
  std::int64_t num_classes() const { return m_num_classes; }
  std::vector<std::int64_t> image_shape() const;  // {C, H, W}
  // Rows of the dataset file this party holds (ascending); empty for in-memory data.
  const std::vector<std::int64_t>& indices() const { return m_indices; }
  const torch::Tensor& images() const { return m_images; }
  const torch::Tensor& labels() const { return m_labels; }

  // The sample order of `epoch`: a permutation of [0, size()) as int64, from (seed, party, epoch).
  torch::Tensor epoch_order(std::int64_t epoch) const;
  std::int64_t num_batches(std::int64_t batch_size, bool drop_last) const;
  // All batches of `epoch` in order. One gather per epoch; the batches are contiguous views
  // into it. Without drop_last the last batch may be smaller.
  std::vector<Batch> epoch_batches(std::int64_t epoch, std::int64_t batch_size,
                                   bool drop_last) const;

  // Uploads the shard to `device` once, as the file stores it (uint8: a quarter of float's
  // memory, so many parties fit on one GPU); epoch_batches then gathers and converts there,
  // with the same order and the same values (one 256-entry table) as on the CPU.
  void to_device(const torch::Device& device);
  torch::Device device() const { return m_device_images.defined() ? m_device_images.device()
                                                                  : torch::Device(torch::kCPU); }

 private:
  int m_party = 0;
  std::uint64_t m_seed = 0;
  std::int64_t m_num_classes = 1;
  std::vector<std::int64_t> m_indices;
  torch::Tensor m_images;  // float32 [n, C, H, W] in [-1, 1], contiguous
  torch::Tensor m_labels;  // int64 [n]
  torch::Tensor m_source_uint8;  // the rows as read (uint8), kept for to_device
  torch::Tensor m_device_images, m_device_labels, m_device_table;
};

// uint8 images [.., C, H, W] to float32 in [-1, 1]: x / 127.5 - 1.
torch::Tensor to_unit_range(const torch::Tensor& images_uint8);

}  // namespace fedgan::data
