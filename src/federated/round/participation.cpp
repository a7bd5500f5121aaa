// Participation draws (see include/fedgan/federated/round/participation.hpp).
#include "fedgan/federated/round/participation.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "fedgan/core/error.hpp"
#include "fedgan/data/random.hpp"

namespace fedgan::federated {

std::vector<int> sample_participants(int total, double fraction, std::uint64_t seed, int round) {
  require(fraction > 0 && fraction <= 1, "participation must be in (0, 1]");
  const int k = std::clamp(static_cast<int>(std::ceil(fraction * total - 1e-9)), 1, total);
  std::vector<int> ids(total);
  for (int i = 0; i < total; ++i) ids[i] = i;
  if (k < total) {
    // Partial Fisher-Yates with our own integer draws: identical on every platform.
    std::mt19937_64 rng(data::derive_seed(seed, 0x5a3d, static_cast<std::uint64_t>(round)));
    for (int i = 0; i < k; ++i) {
      const auto j = i + static_cast<int>(rng() % static_cast<std::uint64_t>(total - i));
      std::swap(ids[i], ids[j]);
    }
    ids.resize(k);
    std::sort(ids.begin(), ids.end());
  }
  return ids;
}

std::vector<int> poisson_participants(int total, double q, std::uint64_t seed, int round) {
  require(q > 0 && q <= 1, "Poisson sampling rate must be in (0, 1]");
  std::vector<int> ids;
  // "pois" as a stream tag keeps these draws apart from every other seeded stream.
  data::Rng rng(data::derive_seed(seed, 0x706f6973, static_cast<std::uint64_t>(round)));
  for (int k = 0; k < total; ++k) {
    // One draw per party even when q = 1, so the stream does not depend on q.
    if (rng.uniform() < q) ids.push_back(k);
  }
  return ids;
}

}  // namespace fedgan::federated
