// The cryptographic pieces of secure aggregation, on libsodium: X25519 key pairs, pairwise
// key agreement, ChaCha20 mask streams added to or subtracted from uint64 vectors, and the
// authenticated encryption of Shamir shares between two parties. Only src/privacy/ includes
// <sodium.h>.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fedgan/privacy/shamir.hpp"

namespace fedgan::privacy {

using Key32 = std::array<std::uint8_t, 32>;

struct KeyPair {
  Key32 public_key{};
  Key32 secret_key{};
};

// Initialises libsodium once (thread-safe); throws fedgan::Error if it cannot start.
void sodium_ready();

// Random bytes: libsodium's system generator when `seed` is empty, otherwise a ChaCha20 stream
// keyed by (seed, label, party, round), for reproducible tests. Never seed a real run.
RandomBytes make_random_bytes(std::optional<std::uint64_t> seed, const std::string& label,
                              std::int64_t party, std::int64_t round);

// A fresh X25519 key pair (crypto_box_keypair), or one derived from the test seed.
KeyPair make_key_pair(std::optional<std::uint64_t> seed, const std::string& label,
                      std::int64_t party, std::int64_t round);

// Overwrites a secret key (sodium_memzero: not optimised away).
void wipe_key(Key32& key);

// X25519 public key of a secret key (to check a reconstructed secret against its public key).
Key32 public_key_of(const Key32& secret_key);

// The pairwise mask key of parties a and b in `round`: BLAKE2b of the X25519 shared point and
// both public keys in party order, as libsodium advises (a raw shared point is not a uniform
// key). Symmetric: party a with (sk_a, pk_b) and party b with (sk_b, pk_a) get the same key.
// Throws when the peer's key is a low-order point (crypto_scalarmult fails).
Key32 mask_key(const Key32& my_secret, const Key32& my_public, std::int64_t my_party,
               const Key32& peer_public, std::int64_t peer_party, std::int64_t round);

// data[i] += sign · stream[i] (mod 2^64), where stream is the ChaCha20 keystream of `key`
// (nonce 0) read as little-endian uint64; sign is +1 or −1.
void apply_mask(const Key32& key, int sign, std::uint64_t* data, std::size_t n);

// Authenticated encryption (crypto_box: X25519 + XSalsa20-Poly1305) of a share from party
// `from` to party `to`; the nonce is (round, from, to), unique because keys are per round.
std::vector<std::uint8_t> seal_share(const ShamirShare& share, const Key32& from_secret,
                                     const Key32& to_public, std::int64_t round, std::int64_t from,
                                     std::int64_t to);
// The inverse; throws fedgan::Error naming both parties when the box does not verify.
ShamirShare open_share(const std::vector<std::uint8_t>& box, const Key32& to_secret,
                       const Key32& from_public, std::int64_t round, std::int64_t from,
                       std::int64_t to, std::size_t chunks);
std::size_t sealed_share_bytes(std::size_t chunks);

}  // namespace fedgan::privacy
