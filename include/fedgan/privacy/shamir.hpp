// t-of-n Shamir secret sharing (Shamir 1979) of byte strings over the prime field GF(2^61 − 1),
// for secure aggregation's dropout recovery: any t shares give the secret back, fewer reveal
// nothing about it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace fedgan::privacy {

inline constexpr std::uint64_t kShamirPrime = (std::uint64_t{1} << 61) - 1;
// A secret is cut into chunks of 7 bytes (< 2^56 < p), each shared with its own polynomial.
inline constexpr std::size_t kShamirChunkBytes = 7;

// One holder's share: the evaluation point x (1 ≤ x < p, distinct per holder) and the value of
// each chunk's polynomial at x.
struct ShamirShare {
  std::uint64_t x = 0;
  std::vector<std::uint64_t> y;
};

// Fills a buffer with random bytes: libsodium's system generator in runs, a seeded stream in tests.
using RandomBytes = std::function<void(std::uint8_t*, std::size_t)>;

std::size_t shamir_chunks(std::size_t secret_bytes);

// Shares `secret` among the holders at points `xs` (distinct, nonzero) so that any `threshold`
// of them recover it. Each chunk's polynomial has the chunk as constant term and threshold − 1
// uniformly random coefficients drawn from `random`. Throws fedgan::Error on bad arguments.
std::vector<ShamirShare> shamir_split(const std::uint8_t* secret, std::size_t bytes, int threshold,
                                      const std::vector<std::uint64_t>& xs,
                                      const RandomBytes& random);

// The secret from at least `threshold` shares (the first `threshold` are used): Lagrange
// interpolation at 0. Fewer shares, repeated points or a chunk that decodes above 7 bytes throw
// fedgan::Error.
std::vector<std::uint8_t> shamir_combine(const std::vector<ShamirShare>& shares, int threshold,
                                         std::size_t bytes);

// Lagrange interpolation at 0 of one chunk through the given points (no threshold check): with
// fewer than threshold points it yields a value unrelated to the secret. Exposed for the tests.
std::uint64_t shamir_interpolate_at_zero(const std::vector<ShamirShare>& shares, std::size_t chunk);

}  // namespace fedgan::privacy
