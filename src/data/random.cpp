// Seeded sampling (see include/fedgan/data/random.hpp).
#include "fedgan/data/random.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fedgan::data {
namespace {

// splitmix64's finalizer (Steele, Lea & Flood 2014): a bijective 64-bit mix.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
  return mix(mix(mix(seed) ^ a) ^ b);
}

std::uint64_t Rng::below(std::uint64_t n) {
  // Values at or above `limit` would favour small results; draw again (rare).
  const std::uint64_t limit =
      std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % n;
  std::uint64_t x = next();
  while (x >= limit) x = next();
  return x % n;
}

double Rng::normal() {
  double u = 0, v = 0, s = 0;
  do {
    u = 2 * uniform() - 1;
    v = 2 * uniform() - 1;
    s = u * u + v * v;
  } while (s >= 1 || s == 0);
  return u * std::sqrt(-2 * std::log(s) / s);
}

double Rng::log_gamma(double shape) {
  if (shape < 1) {
    // G(a) = G(a + 1) * U^(1/a) (Marsaglia & Tsang, section 6); 1 - U lies in (0, 1].
    return log_gamma(shape + 1) + std::log(1 - uniform()) / shape;
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1 / std::sqrt(9 * d);
  for (;;) {
    double x = 0, v = 0;
    do {
      x = normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = 1 - uniform();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return std::log(d * v);
  }
}

std::vector<double> Rng::dirichlet(double alpha, int k) {
  std::vector<double> p(static_cast<std::size_t>(k));
  for (auto& x : p) x = log_gamma(alpha);
  // Normalise in the log domain: p_i = exp(l_i - max) / sum_j exp(l_j - max).
  const double top = *std::max_element(p.begin(), p.end());
  double sum = 0;
  for (auto& x : p) sum += (x = std::exp(x - top));
  for (auto& x : p) x /= sum;
  return p;
}

}  // namespace fedgan::data
