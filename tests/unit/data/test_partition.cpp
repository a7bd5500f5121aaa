// Partition properties: disjoint, complete, non-empty, deterministic; skew that follows alpha.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "fedgan/core/error.hpp"
#include "fedgan/data/partitioner.hpp"
#include "fedgan/data/random.hpp"

using namespace fedgan;
using Catch::Matchers::Contains;

namespace {

// `per_class` samples of each of `classes` classes, interleaved (0,1,..,0,1,..).
std::vector<std::int64_t> balanced_labels(int classes, int per_class) {
  std::vector<std::int64_t> labels;
  for (int i = 0; i < classes * per_class; ++i) labels.push_back(i % classes);
  return labels;
}

void require_valid(const data::PartyIndices& parties, std::size_t n, int expected_parties) {
  REQUIRE(parties.size() == static_cast<std::size_t>(expected_parties));
  std::vector<int> seen(n, 0);
  for (const auto& p : parties) {
    REQUIRE(!p.empty());
    REQUIRE(std::is_sorted(p.begin(), p.end()));
    for (auto i : p) {
      REQUIRE(i >= 0);
      REQUIRE(static_cast<std::size_t>(i) < n);
      ++seen[static_cast<std::size_t>(i)];
    }
  }
  // Disjoint and complete: every sample exactly once.
  REQUIRE(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
}

// Mean over parties of the largest class's share of the party.
double mean_max_share(const data::PartyIndices& parties, const std::vector<std::int64_t>& labels,
                      int classes) {
  const auto counts = data::class_counts(parties, labels, classes);
  double sum = 0;
  for (std::size_t k = 0; k < parties.size(); ++k)
    sum += static_cast<double>(*std::max_element(counts[k].begin(), counts[k].end())) /
           static_cast<double>(parties[k].size());
  return sum / static_cast<double>(parties.size());
}

data::PartitionRecipe recipe(const std::string& method, int parties, double alpha = 0.5,
                             std::uint64_t seed = 1) {
  data::PartitionRecipe r;
  r.method = data::parse_partition_method(method);
  r.parties = parties;
  r.alpha = alpha;
  r.seed = seed;
  return r;
}

}  // namespace

TEST_CASE("every method gives disjoint, complete, non-empty, deterministic parties",
          "[data][partition]") {
  const auto labels = balanced_labels(10, 100);
  for (const auto& method : data::partition_methods().names()) {
    if (method == "folders") {  // no draw: the parties are folders (test_image_folder.cpp)
      CHECK_THROWS_WITH(data::partition(labels, 10, recipe(method, 7)),
                        Contains("only with --dataset folder"));
      continue;
    }
    for (std::uint64_t seed : {0u, 1u, 7u}) {
      INFO(method << " seed " << seed);
      const auto r = recipe(method, 7, 0.5, seed);
      const auto a = data::partition(labels, 10, r);
      require_valid(a, labels.size(), 7);
      CHECK(a == data::partition(labels, 10, r));
      auto other = r;
      other.seed = seed + 100;
      CHECK(a != data::partition(labels, 10, other));
    }
  }
}

TEST_CASE("iid parties have equal sizes (within one)", "[data][partition]") {
  const auto labels = balanced_labels(3, 34);  // 102 samples
  const auto parties = data::partition(labels, 3, recipe("iid", 4));
  for (const auto& p : parties) CHECK((p.size() == 25 || p.size() == 26));
  // One party, one shard: the whole dataset.
  CHECK(data::partition(labels, 3, recipe("iid", 1))[0].size() == labels.size());
}

TEST_CASE("shards give each party at most shards_per_party classes", "[data][partition]") {
  const auto labels = balanced_labels(10, 100);
  auto r = recipe("shards", 10);
  r.shards_per_party = 2;  // 20 shards of 50: each shard lies within one class
  const auto parties = data::partition(labels, 10, r);
  require_valid(parties, labels.size(), 10);
  const auto counts = data::class_counts(parties, labels, 10);
  for (const auto& row : counts) {
    CHECK(std::count_if(row.begin(), row.end(), [](std::int64_t c) { return c > 0; }) <= 2);
  }
}

TEST_CASE("Dirichlet label skew grows as alpha shrinks", "[data][partition]") {
  const auto labels = balanced_labels(10, 200);
  // Averaged over seeds: the mean largest-class share per party.
  auto skew = [&](double alpha) {
    double sum = 0;
    for (std::uint64_t seed = 0; seed < 10; ++seed)
      sum += mean_max_share(data::partition(labels, 10, recipe("dirichlet", 10, alpha, seed)),
                            labels, 10);
    return sum / 10;
  };
  const double s01 = skew(0.1), s1 = skew(1), s100 = skew(100);
  INFO("mean max-class share: alpha 0.1 -> " << s01 << ", 1 -> " << s1 << ", 100 -> " << s100);
  CHECK(s01 > s1);
  CHECK(s1 > s100);
  // Measured (seeds 0..9): about 0.60, 0.27 and 0.11; balanced parties give 0.1.
  CHECK(s01 > 0.45);
  CHECK(s100 < 0.15);
  // IID is the limit of large alpha.
  CHECK(mean_max_share(data::partition(labels, 10, recipe("iid", 10)), labels, 10) < 0.2);
}

TEST_CASE("quantity skew varies party sizes, more for smaller alpha", "[data][partition]") {
  const auto labels = balanced_labels(10, 200);
  auto spread = [&](double alpha) {
    const auto parties = data::partition(labels, 10, recipe("quantity", 10, alpha, 3));
    std::size_t lo = labels.size(), hi = 0;
    for (const auto& p : parties) {
      lo = std::min(lo, p.size());
      hi = std::max(hi, p.size());
    }
    return static_cast<double>(hi) / static_cast<double>(lo);
  };
  CHECK(spread(0.3) > 5 * spread(1000));
  CHECK(spread(1000) < 1.5);
}

TEST_CASE("bad partition recipes fail with the option's name", "[data][partition]") {
  const auto labels = balanced_labels(2, 5);  // 10 samples
  REQUIRE_THROWS_WITH(data::partition(labels, 2, recipe("iid", 0)), Contains("--parties"));
  REQUIRE_THROWS_WITH(data::partition(labels, 2, recipe("dirichlet", 2, 0.0)),
                      Contains("--alpha") && Contains("> 0"));
  REQUIRE_THROWS_WITH(data::partition(labels, 2, recipe("quantity", 2, -1.0)), Contains("--alpha"));
  REQUIRE_THROWS_WITH(data::partition(labels, 2, recipe("iid", 11)),
                      Contains("--parties 11") && Contains("10 samples"));
  REQUIRE_THROWS_WITH(data::partition(labels, 2, recipe("lda", 2)),
                      Contains("unknown method 'lda'") && Contains("dirichlet"));
  auto shards = recipe("shards", 4);
  shards.shards_per_party = 3;
  REQUIRE_THROWS_WITH(data::partition(labels, 2, shards), Contains("12 shards"));
  REQUIRE_THROWS_WITH(data::partition({0, 5}, 2, recipe("iid", 1)), Contains("label 5"));
}

TEST_CASE("an empty party is re-drawn a bounded number of times, then fails clearly",
          "[data][partition]") {
  // 20 parties over 20 samples with extreme size skew: some party is always empty.
  const auto labels = balanced_labels(2, 10);
  REQUIRE_THROWS_WITH(data::partition(labels, 2, recipe("quantity", 20, 0.001)),
                      Contains("no samples") && Contains("100 draws") && Contains("--alpha"));
  // With a moderate alpha some draws leave a party empty (12 parties, 20 samples); the re-draws
  // find a valid one, deterministically.
  const auto a = data::partition(labels, 2, recipe("quantity", 12, 5.0));
  require_valid(a, labels.size(), 12);
  CHECK(a == data::partition(labels, 2, recipe("quantity", 12, 5.0)));
}

TEST_CASE("Rng: bounded integers, gamma moments, Dirichlet on the simplex", "[data][random]") {
  data::Rng rng(123);
  std::vector<int> hist(5, 0);
  for (int i = 0; i < 50000; ++i) ++hist[rng.below(5)];
  for (int h : hist) CHECK(std::abs(h - 10000) < 500);
  for (double shape : {0.3, 1.0, 2.5}) {
    double sum = 0;
    const int n = 40000;
    for (int i = 0; i < n; ++i) sum += std::exp(rng.log_gamma(shape));
    // Gamma(a, 1) has mean a and variance a: 5 standard errors.
    CHECK(std::abs(sum / n - shape) < 5 * std::sqrt(shape / n));
  }
  for (double alpha : {0.001, 0.5, 50.0}) {
    const auto p = rng.dirichlet(alpha, 8);
    double total = 0;
    for (double x : p) {
      CHECK(x >= 0);
      total += x;
    }
    CHECK(total == Approx(1.0));
  }
  // Same seed, same stream; derived seeds differ per component.
  data::Rng a(9), b(9);
  CHECK(a.next() == b.next());
  CHECK(data::derive_seed(1, 2, 3) != data::derive_seed(1, 3, 2));
  CHECK(data::derive_seed(1, 2, 3) == data::derive_seed(1, 2, 3));
}

TEST_CASE("capped parties keep a seeded subset of their rows", "[data][partition]") {
  data::PartyIndices parties = {{0, 2, 4, 6, 8, 10, 12}, {1, 3}, {5, 7, 9, 11, 13, 15, 17, 19}};
  const auto original = parties;
  data::cap_parties(parties, 3, 7);
  REQUIRE(parties.size() == 3);
  CHECK(parties[1] == original[1]);  // at or below the cap: unchanged
  for (std::size_t k : {std::size_t{0}, std::size_t{2}}) {
    CHECK(parties[k].size() == 3);
    CHECK(std::is_sorted(parties[k].begin(), parties[k].end()));
    CHECK(std::includes(original[k].begin(), original[k].end(), parties[k].begin(),
                        parties[k].end()));
  }
  // The same seed draws the same rows; a party's draw does not depend on the other parties.
  auto again = original;
  data::cap_parties(again, 3, 7);
  CHECK(again == parties);
  data::PartyIndices alone = {original[0]};
  data::cap_parties(alone, 3, 7);
  CHECK(alone[0] == parties[0]);
  auto other = original;
  data::cap_parties(other, 3, 8);
  CHECK((other[0] != parties[0] || other[2] != parties[2]));
  auto none = original;
  data::cap_parties(none, 0, 7);
  CHECK(none == original);
}
