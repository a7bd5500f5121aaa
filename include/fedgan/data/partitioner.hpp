// Partitioners: split a labelled dataset into disjoint, complete, non-empty party shards.
// One class per method (iid, dirichlet, shards, quantity), made by the factory of its entry in
// partition_methods().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fedgan/core/choice.hpp"
#include "fedgan/data/random.hpp"

namespace fedgan::data {

// Folders: one party per top-level folder of an image folder (`prepare --dataset folder`); the
// parties come from the files' places, not from a draw, so it has no Partitioner.
enum class PartitionMethod { Iid, Dirichlet, Shards, Quantity, Folders };
std::string to_string(PartitionMethod method);  // its --partition name

// The recipe of a partition; stored as attributes of /parties in the dataset file.
struct PartitionRecipe {
  PartitionMethod method = PartitionMethod::Iid;
  int parties = 1;
  double alpha = 0.5;        // Dirichlet concentration (dirichlet: labels, quantity: sizes)
  int shards_per_party = 2;  // shards: label-sorted shards each party receives
  std::uint64_t seed = 0;
  // > 0: after the partition each party keeps at most this many of its rows, a seeded draw
  // (cap_parties); `prepare --max-per-party`, for few-shot parties.
  std::int64_t max_per_party = 0;
};

// Indices (into the dataset's rows) held by each party, each list sorted ascending.
using PartyIndices = std::vector<std::vector<std::int64_t>>;

// Each party with more than `max` rows keeps `max` of them, drawn without replacement from
// Rng(derive_seed(seed, "cap", party)) (the same draw for a party whatever the other parties),
// sorted ascending. max ≤ 0: nothing changes.
void cap_parties(PartyIndices& parties, std::int64_t max, std::uint64_t seed);

class Partitioner {
 public:
  virtual ~Partitioner() = default;
  virtual std::string name() const = 0;
  // One draw. Must be disjoint and complete; may leave a party empty (the caller re-draws).
  virtual PartyIndices draw(const std::vector<std::int64_t>& labels, std::int64_t num_classes,
                            int parties, Rng& rng) const = 0;
};

// The IID baseline: a uniformly random split into parts whose sizes differ by at most one.
class IidPartitioner : public Partitioner {
 public:
  std::string name() const override { return to_string(PartitionMethod::Iid); }
  PartyIndices draw(const std::vector<std::int64_t>& labels, std::int64_t num_classes, int parties,
                    Rng& rng) const override;
};

// Label skew: each class is split over the parties by proportions p ~ Dir(alpha)
// (Hsu, Qi & Brown 2019, "Measuring the effects of non-identical data distribution").
class DirichletPartitioner : public Partitioner {
 public:
  explicit DirichletPartitioner(double alpha) : m_alpha(alpha) {}
  std::string name() const override { return to_string(PartitionMethod::Dirichlet); }
  PartyIndices draw(const std::vector<std::int64_t>& labels, std::int64_t num_classes, int parties,
                    Rng& rng) const override;

 private:
  double m_alpha;
};

// Pathological label skew: sort by label, cut into parties x shards_per_party shards, deal
// shards_per_party random shards to each party (McMahan et al. 2017, FedAvg).
class ShardsPartitioner : public Partitioner {
 public:
  explicit ShardsPartitioner(int shards_per_party) : m_shards_per_party(shards_per_party) {}
  std::string name() const override { return to_string(PartitionMethod::Shards); }
  PartyIndices draw(const std::vector<std::int64_t>& labels, std::int64_t num_classes, int parties,
                    Rng& rng) const override;

 private:
  int m_shards_per_party;
};

// Quantity skew: party sizes from Dir(alpha) proportions, samples drawn uniformly at random
// (Li et al. 2022, "Federated learning on non-IID data silos: an experimental study").
class QuantityPartitioner : public Partitioner {
 public:
  explicit QuantityPartitioner(double alpha) : m_alpha(alpha) {}
  std::string name() const override { return to_string(PartitionMethod::Quantity); }
  PartyIndices draw(const std::vector<std::int64_t>& labels, std::int64_t num_classes, int parties,
                    Rng& rng) const override;

 private:
  double m_alpha;
};

// --partition: each method's name (as the dataset file stores it), help and factory.
struct PartitionChoice {
  PartitionMethod value;
  const char* name;
  const char* help;
  std::unique_ptr<Partitioner> (*make)(const PartitionRecipe& recipe);
};
const ChoiceTable<PartitionChoice>& partition_methods();
// fedgan::Error naming --partition and the methods for an unknown name.
PartitionMethod parse_partition_method(const std::string& name);

// The partitioner for recipe.method; fedgan::Error for Folders (no draw: see above).
std::unique_ptr<Partitioner> make_partitioner(const PartitionRecipe& recipe);

// Checks the recipe against a dataset of `num_samples` rows; fedgan::Error naming the option.
void validate(const PartitionRecipe& recipe, std::int64_t num_samples);

// Validates, draws with Rng(recipe.seed) and re-draws (at most kMaxDraws times) while a party
// is empty; fails with a clear message after that. The same recipe gives the same partition.
constexpr int kMaxDraws = 100;
PartyIndices partition(const std::vector<std::int64_t>& labels, std::int64_t num_classes,
                       const PartitionRecipe& recipe);

// counts[k][c]: samples of class c held by party k.
std::vector<std::vector<std::int64_t>> class_counts(const PartyIndices& parties,
                                                    const std::vector<std::int64_t>& labels,
                                                    std::int64_t num_classes);

}  // namespace fedgan::data
