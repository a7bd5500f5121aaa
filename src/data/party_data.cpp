// Party data for the local trainer (see include/fedgan/data/party_data.hpp).
#include "fedgan/data/party_data.hpp"

#include <algorithm>

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"

namespace fedgan::data {

std::int64_t PartyData::batches_per_epoch(int batch_size) const {
  const std::int64_t n = size();
  if (n <= 0) return 0;
  return n >= batch_size ? n / batch_size : 1;
}

std::vector<Batch> ShardPartyData::epoch(std::int64_t epoch, int batch_size) {
  // A shard smaller than a batch trains on the whole shard as one smaller batch.
  const bool drop_last = m_loader.size() >= batch_size;
  return m_loader.epoch_batches(epoch, batch_size, drop_last);
}

TensorPartyData::TensorPartyData(torch::Tensor images, torch::Tensor labels, std::uint64_t seed)
    : m_images(std::move(images)), m_labels(std::move(labels)), m_seed(seed) {
  require(m_images.dim() == 4, "party data: images must be [N, C, H, W]");
  require(!m_labels.defined() || m_labels.size(0) == m_images.size(0),
          "party data: labels and images differ in count");
}

std::vector<Batch> TensorPartyData::epoch(std::int64_t epoch, int batch_size) {
  auto gen = compat::make_cpu_generator(m_seed * 1000003ULL + static_cast<std::uint64_t>(epoch));
  auto order = torch::randperm(size(), gen, torch::kInt64).to(m_images.device());
  std::vector<Batch> out;
  for (std::int64_t i = 0; i + batch_size <= size() || (i == 0 && size() > 0); i += batch_size) {
    auto idx = order.narrow(0, i, std::min<std::int64_t>(batch_size, size() - i));
    out.push_back({m_images.index_select(0, idx),
                   m_labels.defined() ? m_labels.index_select(0, idx) : torch::Tensor()});
  }
  return out;
}

}  // namespace fedgan::data
