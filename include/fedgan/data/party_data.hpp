// PartyData: one party's samples as the local trainer sees them (shuffled batches for an epoch
// number), over a ShardLoader (a party of a dataset file) or in-memory tensors (tests).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "fedgan/data/shard_loader.hpp"

namespace fedgan::data {

class PartyData {
 public:
  virtual ~PartyData() = default;
  // Samples held: the FedAvg weight n_k.
  virtual std::int64_t size() const = 0;
  // The epoch's batches, shuffled deterministically from (seed, party, epoch).
  virtual std::vector<Batch> epoch(std::int64_t epoch, int batch_size) = 0;
  // Batches one epoch yields: size / batch_size (the last partial batch is dropped), or one
  // batch of the whole shard when it is smaller than a batch.
  std::int64_t batches_per_epoch(int batch_size) const;
};

// A ShardLoader (one party of a dataset file) as PartyData.
class ShardPartyData final : public PartyData {
 public:
  explicit ShardPartyData(ShardLoader loader) : m_loader(std::move(loader)) {}
  std::int64_t size() const override { return m_loader.size(); }
  std::vector<Batch> epoch(std::int64_t epoch, int batch_size) override;

 private:
  ShardLoader m_loader;
};

// In-memory party data (tests, benchmarks): float images in [-1, 1] and optional labels.
class TensorPartyData final : public PartyData {
 public:
  TensorPartyData(torch::Tensor images, torch::Tensor labels, std::uint64_t seed);
  std::int64_t size() const override { return m_images.size(0); }
  std::vector<Batch> epoch(std::int64_t epoch, int batch_size) override;

 private:
  torch::Tensor m_images, m_labels;
  std::uint64_t m_seed;
};

}  // namespace fedgan::data
