// Portable seeded randomness for data partitioning and shuffling: std::mt19937_64 plus our own
// uniform, normal, gamma and Dirichlet sampling, so a seed gives the same partition and the
// same batch order with every standard library (std distributions are implementation-defined).
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace fedgan::data {

// Mixes several numbers (seed, party, epoch, ...) into one well-spread 64-bit seed.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0);

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : m_engine(seed) {}

  std::uint64_t next() { return m_engine(); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n), unbiased (rejection of the short last interval). n > 0.
  std::uint64_t below(std::uint64_t n);
  // Standard normal (Marsaglia's polar method).
  double normal();
  // log of a Gamma(shape, 1) variate (Marsaglia & Tsang 2000); in logs so that tiny shapes,
  // whose variates underflow a double, still give usable Dirichlet proportions.
  double log_gamma(double shape);
  // Proportions drawn from a symmetric Dirichlet(alpha, ..., alpha) over k categories.
  std::vector<double> dirichlet(double alpha, int k);

  // Fisher-Yates shuffle.
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  std::mt19937_64 m_engine;
};

}  // namespace fedgan::data
