// Partitioners and the re-drawing driver (see include/fedgan/data/partitioner.hpp).
#include "fedgan/data/partitioner.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "fedgan/core/error.hpp"

namespace fedgan::data {
namespace {

std::vector<std::int64_t> iota(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), std::int64_t{0});
  return v;
}

// Cuts `items` into consecutive pieces at the cumulative proportions (numpy's
// split(items, (cumsum(p) * n).astype(int)[:-1]), the usual Dirichlet recipe).
void split_by_proportions(const std::vector<std::int64_t>& items, const std::vector<double>& p,
                          PartyIndices& out) {
  const auto n = static_cast<double>(items.size());
  double cumulative = 0;
  std::size_t begin = 0;
  for (std::size_t k = 0; k < p.size(); ++k) {
    cumulative += p[k];
    std::size_t end = k + 1 == p.size() ? items.size() : static_cast<std::size_t>(cumulative * n);
    end = std::clamp(end, begin, items.size());
    out[k].insert(out[k].end(), items.begin() + begin, items.begin() + end);
    begin = end;
  }
}

}  // namespace

PartyIndices IidPartitioner::draw(const std::vector<std::int64_t>& labels, std::int64_t,
                                  int parties, Rng& rng) const {
  auto order = iota(static_cast<std::int64_t>(labels.size()));
  rng.shuffle(order);
  PartyIndices out(static_cast<std::size_t>(parties));
  // Sizes differ by at most one.
  const std::size_t n = order.size(), p = out.size();
  std::size_t begin = 0;
  for (std::size_t k = 0; k < p; ++k) {
    const std::size_t size = n / p + (k < n % p ? 1 : 0);
    out[k].assign(order.begin() + begin, order.begin() + begin + size);
    begin += size;
  }
  return out;
}

PartyIndices DirichletPartitioner::draw(const std::vector<std::int64_t>& labels,
                                        std::int64_t num_classes, int parties, Rng& rng) const {
  std::vector<std::vector<std::int64_t>> by_class(static_cast<std::size_t>(num_classes));
  for (std::size_t i = 0; i < labels.size(); ++i)
    by_class[static_cast<std::size_t>(labels[i])].push_back(static_cast<std::int64_t>(i));
  PartyIndices out(static_cast<std::size_t>(parties));
  for (auto& members : by_class) {
    rng.shuffle(members);
    split_by_proportions(members, rng.dirichlet(m_alpha, parties), out);
  }
  return out;
}

PartyIndices ShardsPartitioner::draw(const std::vector<std::int64_t>& labels, std::int64_t,
                                     int parties, Rng& rng) const {
  // Shuffle, then sort by label (stable), so the order within a class is random.
  auto order = iota(static_cast<std::int64_t>(labels.size()));
  rng.shuffle(order);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    return labels[static_cast<std::size_t>(a)] < labels[static_cast<std::size_t>(b)];
  });
  const std::size_t shards = static_cast<std::size_t>(parties) * m_shards_per_party;
  std::vector<std::size_t> shard_ids(shards);
  std::iota(shard_ids.begin(), shard_ids.end(), std::size_t{0});
  rng.shuffle(shard_ids);
  PartyIndices out(static_cast<std::size_t>(parties));
  const std::size_t n = order.size();
  for (std::size_t s = 0; s < shards; ++s) {
    const std::size_t id = shard_ids[s];
    const std::size_t begin = id * (n / shards) + std::min(id, n % shards);
    const std::size_t size = n / shards + (id < n % shards ? 1 : 0);
    auto& party = out[s / static_cast<std::size_t>(m_shards_per_party)];
    party.insert(party.end(), order.begin() + begin, order.begin() + begin + size);
  }
  return out;
}

PartyIndices QuantityPartitioner::draw(const std::vector<std::int64_t>& labels, std::int64_t,
                                       int parties, Rng& rng) const {
  auto order = iota(static_cast<std::int64_t>(labels.size()));
  rng.shuffle(order);
  PartyIndices out(static_cast<std::size_t>(parties));
  split_by_proportions(order, rng.dirichlet(m_alpha, parties), out);
  return out;
}

const ChoiceTable<PartitionChoice>& partition_methods() {
  static const PartitionChoice entries[] = {
      {PartitionMethod::Iid, "iid", "uniformly at random, sizes within one",
       [](const PartitionRecipe&) -> std::unique_ptr<Partitioner> {
         return std::make_unique<IidPartitioner>();
       }},
      {PartitionMethod::Dirichlet, "dirichlet", "label skew: class shares from Dir(--alpha)",
       [](const PartitionRecipe& r) -> std::unique_ptr<Partitioner> {
         return std::make_unique<DirichletPartitioner>(r.alpha);
       }},
      {PartitionMethod::Shards, "shards", "--shards-per-party label-sorted shards per party",
       [](const PartitionRecipe& r) -> std::unique_ptr<Partitioner> {
         return std::make_unique<ShardsPartitioner>(r.shards_per_party);
       }},
      {PartitionMethod::Quantity, "quantity", "size skew: party sizes from Dir(--alpha)",
       [](const PartitionRecipe& r) -> std::unique_ptr<Partitioner> {
         return std::make_unique<QuantityPartitioner>(r.alpha);
       }},
      {PartitionMethod::Folders, "folders",
       "one party per top-level folder of --source (--dataset folder)",
       [](const PartitionRecipe&) -> std::unique_ptr<Partitioner> {
         throw Error(
             "--partition folders: only with --dataset folder (one party per top-level folder "
             "of --source); other datasets need a drawn partition (iid, dirichlet, shards, "
             "quantity)");
       }},
  };
  static const ChoiceTable<PartitionChoice> table(entries, "--partition", "method");
  return table;
}

PartitionMethod parse_partition_method(const std::string& name) {
  return partition_methods().parse(name).value;
}

std::string to_string(PartitionMethod method) { return partition_methods().name(method); }

std::unique_ptr<Partitioner> make_partitioner(const PartitionRecipe& recipe) {
  return partition_methods().of(recipe.method).make(recipe);
}

void validate(const PartitionRecipe& recipe, std::int64_t num_samples) {
  require(recipe.parties >= 1,
          "--parties must be at least 1, got " + std::to_string(recipe.parties));
  require(recipe.alpha > 0 && std::isfinite(recipe.alpha),
          "--alpha (Dirichlet concentration) must be > 0 and finite, got " +
              std::to_string(recipe.alpha));
  require(recipe.shards_per_party >= 1,
          "--shards-per-party must be at least 1, got " + std::to_string(recipe.shards_per_party));
  require(recipe.parties <= num_samples, "--parties " + std::to_string(recipe.parties) +
                                             " exceeds the " + std::to_string(num_samples) +
                                             " samples kept; every party needs at least one");
  if (recipe.method == PartitionMethod::Shards) {
    const std::int64_t shards = std::int64_t{recipe.parties} * recipe.shards_per_party;
    require(shards <= num_samples,
            "--partition shards: parties x shards-per-party = " + std::to_string(shards) +
                " shards exceed the " + std::to_string(num_samples) + " samples kept");
  }
}

PartyIndices partition(const std::vector<std::int64_t>& labels, std::int64_t num_classes,
                       const PartitionRecipe& recipe) {
  validate(recipe, static_cast<std::int64_t>(labels.size()));
  for (auto label : labels)
    require(label >= 0 && label < num_classes, "partition: label " + std::to_string(label) +
                                                   " outside [0, " + std::to_string(num_classes) +
                                                   ")");
  const auto partitioner = make_partitioner(recipe);
  Rng rng(recipe.seed);
  for (int attempt = 0; attempt < kMaxDraws; ++attempt) {
    auto parties = partitioner->draw(labels, num_classes, recipe.parties, rng);
    const bool all_nonempty =
        std::none_of(parties.begin(), parties.end(), [](const auto& p) { return p.empty(); });
    if (!all_nonempty) continue;
    for (auto& p : parties) std::sort(p.begin(), p.end());
    return parties;
  }
  std::ostringstream msg;
  msg << "--partition " << to_string(recipe.method) << ": some party received no samples in "
      << kMaxDraws << " draws (parties " << recipe.parties << ", alpha " << recipe.alpha
      << ", samples " << labels.size() << "); use fewer --parties or a larger --alpha";
  throw Error(msg.str());
}

std::vector<std::vector<std::int64_t>> class_counts(const PartyIndices& parties,
                                                    const std::vector<std::int64_t>& labels,
                                                    std::int64_t num_classes) {
  std::vector<std::vector<std::int64_t>> counts(
      parties.size(), std::vector<std::int64_t>(static_cast<std::size_t>(num_classes), 0));
  for (std::size_t k = 0; k < parties.size(); ++k)
    for (auto i : parties[k])
      ++counts[k][static_cast<std::size_t>(labels[static_cast<std::size_t>(i)])];
  return counts;
}

void cap_parties(PartyIndices& parties, std::int64_t max, std::uint64_t seed) {
  if (max <= 0) return;
  constexpr std::uint64_t kCap = 0x636170;  // "cap": the cap's own stream
  for (std::size_t k = 0; k < parties.size(); ++k) {
    auto& rows = parties[k];
    if (static_cast<std::int64_t>(rows.size()) <= max) continue;
    Rng rng(derive_seed(seed, kCap, k));
    // The first `max` places of a Fisher-Yates shuffle: a uniform draw without replacement.
    for (std::int64_t i = 0; i < max; ++i) {
      const auto j = static_cast<std::size_t>(i) +
                     static_cast<std::size_t>(rng.below(rows.size() - static_cast<std::size_t>(i)));
      std::swap(rows[static_cast<std::size_t>(i)], rows[j]);
    }
    rows.resize(static_cast<std::size_t>(max));
    std::sort(rows.begin(), rows.end());
  }
}

}  // namespace fedgan::data
