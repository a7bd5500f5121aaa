// FixedPointCodec (see include/fedgan/privacy/fixed_point.hpp).
#include "fedgan/privacy/fixed_point.hpp"

#include <cmath>
#include <string>

#include "fedgan/core/error.hpp"

namespace fedgan::privacy {

FixedPointCodec::FixedPointCodec(double party_bound, double sum_bound, std::int64_t parties)
    : m_party_bound(party_bound), m_sum_bound(sum_bound), m_parties(parties) {
  require(std::isfinite(party_bound) && party_bound > 0,
          "fixed point: the per-party bound must be a finite number > 0 (got " +
              std::to_string(party_bound) + ")");
  require(std::isfinite(sum_bound) && sum_bound >= party_bound,
          "fixed point: the sum bound must be finite and at least the per-party bound (got " +
              std::to_string(sum_bound) + " < " + std::to_string(party_bound) + ")");
  require(parties >= 1 && parties < (std::int64_t{1} << 40),
          "fixed point: the number of parties must be in [1, 2^40) (got " +
              std::to_string(parties) + ")");
  // Largest k with sum_bound·2^k ≤ 2^62; frexp gives sum_bound = f·2^e with f in [0.5, 1).
  int e = 0;
  std::frexp(sum_bound, &e);
  const int k = 62 - e;
  require(k > -1000 && k < 1000, "fixed point: the sum bound " + std::to_string(sum_bound) +
                                     " is outside the range a float64 scale can serve");
  m_scale = std::ldexp(1.0, k);
}

std::int64_t FixedPointCodec::encode(const float* x, std::size_t n, double weight,
                                     std::uint64_t* out) const {
  require(std::isfinite(weight) && weight >= 0,
          "fixed point: the weight must be finite and >= 0 (got " + std::to_string(weight) + ")");
  std::int64_t clamped = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double v = weight * static_cast<double>(x[i]);
    if (!std::isfinite(v))
      throw Error("fixed point: value " + std::to_string(i) + " is not finite");
    if (v > m_party_bound) {
      v = m_party_bound;
      ++clamped;
    } else if (v < -m_party_bound) {
      v = -m_party_bound;
      ++clamped;
    }
    // |v·scale| ≤ 2^62, so llround cannot overflow; the cast to unsigned is mod 2^64.
    out[i] = static_cast<std::uint64_t>(std::llround(v * m_scale));
  }
  return clamped;
}

void FixedPointCodec::decode(const std::uint64_t* sum, std::size_t n, double* out) const {
  const double inv = 1.0 / m_scale;  // a power of two: exact
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<double>(static_cast<std::int64_t>(sum[i])) * inv;
}

}  // namespace fedgan::privacy
