// Fixed-point encoding of real updates as integers modulo 2^64, for secure aggregation: masked
// integers sum exactly (wrapping), so the masks cancel bit for bit, and the scale is chosen so
// that the true sum of every party's values can never wrap.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fedgan::privacy {

// Range (docs/DESIGN.md, "Secure aggregation"): every party's encoded value v (already weighted)
// is clamped to |v| ≤ party_bound, the sum of all parties' values is then at most sum_bound in
// absolute value, and the scale is the largest power of two with sum_bound·scale ≤ 2^62. The
// integer sum therefore stays below 2^62 + parties/2 < 2^63 (rounding adds at most 1/2 per
// party) and reads back exactly as a signed 64-bit number; the decoded sum is within
// parties/(2·scale) ≤ parties·sum_bound·2^-61 of the true sum. A power of two makes encoding a
// float32 times an integer weight below 2^29, and decoding, exact in float64 up to the rounding.
class FixedPointCodec {
 public:
  // party_bound > 0: bound on |weight·x| of one party's coordinate; sum_bound ≥ party_bound:
  // bound on |Σ weight·x| over all parties; parties ≥ 1: how many may contribute. Throws
  // fedgan::Error naming the bad argument.
  FixedPointCodec(double party_bound, double sum_bound, std::int64_t parties);

  double scale() const { return m_scale; }
  // Smallest representable step of one party's value (1/scale).
  double resolution() const { return 1.0 / m_scale; }
  double party_bound() const { return m_party_bound; }
  double sum_bound() const { return m_sum_bound; }

  // out[i] = round(weight·x[i]·scale) as two's complement mod 2^64, after clamping weight·x[i]
  // to ±party_bound. Returns how many values were clamped. A non-finite value throws.
  std::int64_t encode(const float* x, std::size_t n, double weight, std::uint64_t* out) const;
  // out[i] = (signed) sum[i] / scale.
  void decode(const std::uint64_t* sum, std::size_t n, double* out) const;

 private:
  double m_party_bound, m_sum_bound, m_scale;
  std::int64_t m_parties;
};

}  // namespace fedgan::privacy
