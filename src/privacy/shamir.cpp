// Shamir secret sharing over GF(2^61 − 1) (see include/fedgan/privacy/shamir.hpp).
#include "fedgan/privacy/shamir.hpp"

#include <set>
#include <string>

#include "fedgan/core/error.hpp"

namespace fedgan::privacy {
namespace {

constexpr std::uint64_t kP = kShamirPrime;

std::uint64_t field_add(std::uint64_t a, std::uint64_t b) {
  std::uint64_t s = a + b;  // < 2^62: no overflow
  return s >= kP ? s - kP : s;
}
std::uint64_t field_sub(std::uint64_t a, std::uint64_t b) { return a >= b ? a - b : a + kP - b; }
std::uint64_t field_mul(std::uint64_t a, std::uint64_t b) {
  // A Mersenne prime: 2^61 ≡ 1, so the high bits fold onto the low ones.
  const unsigned __int128 z = static_cast<unsigned __int128>(a) * b;
  std::uint64_t r = static_cast<std::uint64_t>(z & kP) + static_cast<std::uint64_t>(z >> 61);
  return r >= kP ? r - kP : r;
}
std::uint64_t field_pow(std::uint64_t a, std::uint64_t e) {
  std::uint64_t r = 1;
  while (e) {
    if (e & 1) r = field_mul(r, a);
    a = field_mul(a, a);
    e >>= 1;
  }
  return r;
}
// Fermat: a^(p−2) = a^−1 for a ≠ 0.
std::uint64_t field_inv(std::uint64_t a) { return field_pow(a, kP - 2); }

std::uint64_t random_field_element(const RandomBytes& random) {
  for (;;) {
    std::uint8_t b[8];
    random(b, sizeof(b));
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | b[i];
    v &= kP;  // 61 bits, uniform; only p itself must be rejected
    if (v != kP) return v;
  }
}

}  // namespace

std::size_t shamir_chunks(std::size_t secret_bytes) {
  return (secret_bytes + kShamirChunkBytes - 1) / kShamirChunkBytes;
}

std::vector<ShamirShare> shamir_split(const std::uint8_t* secret, std::size_t bytes, int threshold,
                                      const std::vector<std::uint64_t>& xs,
                                      const RandomBytes& random) {
  require(threshold >= 1,
          "shamir: the threshold must be >= 1 (got " + std::to_string(threshold) + ")");
  require(static_cast<std::size_t>(threshold) <= xs.size(),
          "shamir: the threshold " + std::to_string(threshold) + " exceeds the " +
              std::to_string(xs.size()) + " holders");
  std::set<std::uint64_t> seen;
  for (auto x : xs)
    require(x != 0 && x < kP && seen.insert(x).second,
            "shamir: share points must be distinct, nonzero and below 2^61 - 1");
  const std::size_t chunks = shamir_chunks(bytes);
  std::vector<ShamirShare> shares(xs.size());
  for (std::size_t h = 0; h < xs.size(); ++h) {
    shares[h].x = xs[h];
    shares[h].y.resize(chunks);
  }
  std::vector<std::uint64_t> coef(static_cast<std::size_t>(threshold));
  for (std::size_t c = 0; c < chunks; ++c) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < kShamirChunkBytes; ++i) {
      const std::size_t at = c * kShamirChunkBytes + i;
      if (at < bytes) value |= static_cast<std::uint64_t>(secret[at]) << (8 * i);
    }
    coef[0] = value;
    for (std::size_t k = 1; k < coef.size(); ++k) coef[k] = random_field_element(random);
    for (auto& share : shares) {
      // Horner: f(x) = c0 + x(c1 + x(c2 + ...)).
      std::uint64_t y = 0;
      for (std::size_t k = coef.size(); k-- > 0;) y = field_add(field_mul(y, share.x), coef[k]);
      share.y[c] = y;
    }
  }
  return shares;
}

std::uint64_t shamir_interpolate_at_zero(const std::vector<ShamirShare>& shares,
                                         std::size_t chunk) {
  // f(0) = Σ_j y_j · Π_{m≠j} x_m / (x_m − x_j).
  std::uint64_t result = 0;
  for (std::size_t j = 0; j < shares.size(); ++j) {
    std::uint64_t num = 1, den = 1;
    for (std::size_t m = 0; m < shares.size(); ++m) {
      if (m == j) continue;
      num = field_mul(num, shares[m].x);
      den = field_mul(den, field_sub(shares[m].x, shares[j].x));
    }
    result = field_add(result, field_mul(shares[j].y.at(chunk), field_mul(num, field_inv(den))));
  }
  return result;
}

std::vector<std::uint8_t> shamir_combine(const std::vector<ShamirShare>& shares, int threshold,
                                         std::size_t bytes) {
  require(threshold >= 1 && shares.size() >= static_cast<std::size_t>(threshold),
          "shamir: " + std::to_string(shares.size()) + " shares cannot recover a secret shared " +
              std::to_string(threshold) + "-of-n (at least " + std::to_string(threshold) +
              " are needed)");
  const std::vector<ShamirShare> used(shares.begin(), shares.begin() + threshold);
  const std::size_t chunks = shamir_chunks(bytes);
  std::set<std::uint64_t> seen;
  for (auto& s : used) {
    require(s.x != 0 && s.x < kP && seen.insert(s.x).second,
            "shamir: shares must have distinct, nonzero points");
    require(s.y.size() == chunks, "shamir: a share holds " + std::to_string(s.y.size()) +
                                      " chunks, expected " + std::to_string(chunks));
  }
  std::vector<std::uint8_t> secret(bytes);
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::uint64_t value = shamir_interpolate_at_zero(used, c);
    require(value < (std::uint64_t{1} << (8 * kShamirChunkBytes)),
            "shamir: the shares do not belong to one secret (chunk " + std::to_string(c) +
                " is out of range)");
    for (std::size_t i = 0; i < kShamirChunkBytes; ++i) {
      const std::size_t at = c * kShamirChunkBytes + i;
      if (at < bytes) secret[at] = static_cast<std::uint8_t>(value >> (8 * i));
    }
  }
  return secret;
}

}  // namespace fedgan::privacy
