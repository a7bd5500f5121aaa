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

// A public key (X25519), or any 32 bytes that are not secret.
using Key32 = std::array<std::uint8_t, 32>;

// 32 secret bytes (an X25519 secret key, a pairwise mask key) that wipe themselves with
// sodium_memzero on every path: when destroyed, moved from, moved over or reset. Move-only: a
// copy would be one more place to wipe. held() counts the keys that hold secret bytes in this
// process, so that a test can see that no key outlives its round.
class SecretKey {
 public:
  static constexpr std::size_t kBytes = 32;
  SecretKey() noexcept = default;  // empty: all zero, not held
  ~SecretKey();
  SecretKey(SecretKey&& other) noexcept;
  SecretKey& operator=(SecretKey&& other) noexcept;
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;

  // The key of `source` (kBytes bytes), whose bytes are wiped.
  static SecretKey take(std::uint8_t* source) noexcept;
  // For a function that writes the key in place (libsodium's key generation): kBytes bytes.
  std::uint8_t* fill() noexcept;
  const std::uint8_t* data() const noexcept { return m_bytes.data(); }
  bool empty() const noexcept { return !m_held; }
  // Wipes the key now; the object stays, empty.
  void reset() noexcept;

  // Keys alive and not wiped, in this process.
  static std::int64_t held() noexcept;

 private:
  std::array<std::uint8_t, kBytes> m_bytes{};
  bool m_held = false;  // zero bytes are an empty key: reset() wipes the whole object
};
// Constant-time comparison (sodium_memcmp).
bool operator==(const SecretKey& a, const SecretKey& b);
inline bool operator!=(const SecretKey& a, const SecretKey& b) { return !(a == b); }

struct KeyPair {
  Key32 public_key{};
  SecretKey secret_key;
};

// Overwrites secret bytes that are not a SecretKey (Shamir shares of one): sodium_memzero, which
// the compiler does not optimise away.
void wipe_bytes(void* data, std::size_t bytes) noexcept;

// Initialises libsodium once (thread-safe); throws fedgan::Error if it cannot start.
void sodium_ready();

// Random bytes: libsodium's system generator when `seed` is empty, otherwise a ChaCha20 stream
// keyed by (seed, label, party, round), for reproducible tests. Never seed a real run.
RandomBytes make_random_bytes(std::optional<std::uint64_t> seed, const std::string& label,
                              std::int64_t party, std::int64_t round);

// A fresh X25519 key pair (crypto_box_keypair), or one derived from the test seed.
KeyPair make_key_pair(std::optional<std::uint64_t> seed, const std::string& label,
                      std::int64_t party, std::int64_t round);

// X25519 public key of a secret key (to check a reconstructed secret against its public key).
Key32 public_key_of(const SecretKey& secret_key);

// The pairwise mask key of parties a and b in `round`: BLAKE2b of the X25519 shared point and
// both public keys in party order, as libsodium advises (a raw shared point is not a uniform
// key). Symmetric: party a with (sk_a, pk_b) and party b with (sk_b, pk_a) get the same key.
// Throws when the peer's key is a low-order point (crypto_scalarmult fails).
SecretKey mask_key(const SecretKey& my_secret, const Key32& my_public, std::int64_t my_party,
                   const Key32& peer_public, std::int64_t peer_party, std::int64_t round);

// data[i] += sign · stream[i] (mod 2^64), where stream is the ChaCha20 keystream of `key`
// (nonce 0) read as little-endian uint64; sign is +1 or −1.
void apply_mask(const SecretKey& key, int sign, std::uint64_t* data, std::size_t n);

// Authenticated encryption (crypto_box: X25519 + XSalsa20-Poly1305) of a share from party
// `from` to party `to`; the nonce is (round, from, to), unique because keys are per round.
std::vector<std::uint8_t> seal_share(const ShamirShare& share, const SecretKey& from_secret,
                                     const Key32& to_public, std::int64_t round, std::int64_t from,
                                     std::int64_t to);
// The inverse; throws fedgan::Error naming both parties when the box does not verify.
ShamirShare open_share(const std::vector<std::uint8_t>& box, const SecretKey& to_secret,
                       const Key32& from_public, std::int64_t round, std::int64_t from,
                       std::int64_t to, std::size_t chunks);
std::size_t sealed_share_bytes(std::size_t chunks);

}  // namespace fedgan::privacy
