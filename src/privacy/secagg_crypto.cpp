// libsodium behind secure aggregation (see include/fedgan/privacy/secagg_crypto.hpp).
#include "fedgan/privacy/secagg_crypto.hpp"

#include <sodium.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <type_traits>

#include "fedgan/core/error.hpp"

namespace fedgan::privacy {
namespace {

void put_u64(std::uint8_t* out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint64_t get_u64(const std::uint8_t* in) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | in[i];
  return v;
}

// BLAKE2b-256 of a label and three numbers: the seed of one test stream or key pair.
Key32 derive(std::uint64_t seed, const std::string& label, std::int64_t party, std::int64_t round) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(label.data()),
                            label.size());
  std::uint8_t nums[24];
  put_u64(nums, seed);
  put_u64(nums + 8, static_cast<std::uint64_t>(party));
  put_u64(nums + 16, static_cast<std::uint64_t>(round));
  crypto_generichash_update(&st, nums, sizeof(nums));
  Key32 out;
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

// A ChaCha20 keystream read in order (the test stand-in for the system generator).
class SeededStream {
 public:
  explicit SeededStream(const Key32& key) : m_key(key) {}
  void fill(std::uint8_t* out, std::size_t n) {
    while (n > 0) {
      if (m_used == sizeof(m_block)) {
        std::memset(m_block, 0, sizeof(m_block));
        std::uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {};
        crypto_stream_chacha20_xor_ic(m_block, m_block, sizeof(m_block), nonce, m_counter++,
                                      m_key.data());
        m_used = 0;
      }
      const std::size_t k = std::min(n, sizeof(m_block) - m_used);
      std::memcpy(out, m_block + m_used, k);
      m_used += k;
      out += k;
      n -= k;
    }
  }

 private:
  Key32 m_key;
  std::uint8_t m_block[64] = {};
  std::size_t m_used = sizeof(m_block);
  std::uint64_t m_counter = 0;
};

void make_nonce(std::uint8_t* nonce, std::int64_t round, std::int64_t from, std::int64_t to) {
  static_assert(crypto_box_NONCEBYTES == 24, "crypto_box nonce is 24 bytes");
  put_u64(nonce, static_cast<std::uint64_t>(round));
  put_u64(nonce + 8, static_cast<std::uint64_t>(from));
  put_u64(nonce + 16, static_cast<std::uint64_t>(to));
}

static_assert(std::is_standard_layout_v<SecretKey>, "SecretKey is wiped as raw bytes");

// SecretKey::held(): keys alive and not wiped, over every thread.
std::atomic<std::int64_t> g_secret_keys_held{0};

}  // namespace

SecretKey::~SecretKey() { reset(); }

SecretKey::SecretKey(SecretKey&& other) noexcept : m_bytes(other.m_bytes), m_held(other.m_held) {
  if (m_held) g_secret_keys_held.fetch_add(1);
  other.reset();
}

SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  if (this != &other) {
    reset();
    m_bytes = other.m_bytes;
    m_held = other.m_held;
    if (m_held) g_secret_keys_held.fetch_add(1);
    other.reset();
  }
  return *this;
}

SecretKey SecretKey::take(std::uint8_t* source) noexcept {
  SecretKey key;
  std::memcpy(key.fill(), source, kBytes);
  wipe_bytes(source, kBytes);
  return key;
}

std::uint8_t* SecretKey::fill() noexcept {
  if (!m_held) g_secret_keys_held.fetch_add(1);
  m_held = true;
  return m_bytes.data();
}

void SecretKey::reset() noexcept {
  if (m_held) g_secret_keys_held.fetch_sub(1);
  // The whole object, key and flag, through a call the compiler cannot drop (a plain store in
  // a destructor may be removed as dead).
  sodium_memzero(static_cast<void*>(this), sizeof(SecretKey));
}

std::int64_t SecretKey::held() noexcept { return g_secret_keys_held.load(); }

bool operator==(const SecretKey& a, const SecretKey& b) {
  return sodium_memcmp(a.data(), b.data(), SecretKey::kBytes) == 0;
}

void wipe_bytes(void* data, std::size_t bytes) noexcept { sodium_memzero(data, bytes); }

void sodium_ready() {
  // sodium_init is thread-safe and returns 1 when already initialised.
  if (sodium_init() < 0) throw Error("secure aggregation: libsodium failed to initialise");
}

RandomBytes make_random_bytes(std::optional<std::uint64_t> seed, const std::string& label,
                              std::int64_t party, std::int64_t round) {
  sodium_ready();
  if (!seed) return [](std::uint8_t* out, std::size_t n) { randombytes_buf(out, n); };
  auto stream = std::make_shared<SeededStream>(derive(*seed, label, party, round));
  return [stream](std::uint8_t* out, std::size_t n) { stream->fill(out, n); };
}

KeyPair make_key_pair(std::optional<std::uint64_t> seed, const std::string& label,
                      std::int64_t party, std::int64_t round) {
  sodium_ready();
  static_assert(crypto_box_PUBLICKEYBYTES == 32 && crypto_box_SECRETKEYBYTES == 32 &&
                    crypto_box_SEEDBYTES == 32 && crypto_scalarmult_BYTES == 32,
                "X25519 keys are 32 bytes");
  KeyPair kp;
  if (seed) {
    Key32 s = derive(*seed, label, party, round);
    crypto_box_seed_keypair(kp.public_key.data(), kp.secret_key.fill(), s.data());
    sodium_memzero(s.data(), s.size());
  } else {
    crypto_box_keypair(kp.public_key.data(), kp.secret_key.fill());
  }
  return kp;
}

Key32 public_key_of(const SecretKey& secret_key) {
  sodium_ready();
  Key32 pk;
  crypto_scalarmult_base(pk.data(), secret_key.data());
  return pk;
}

SecretKey mask_key(const SecretKey& my_secret, const Key32& my_public, std::int64_t my_party,
                   const Key32& peer_public, std::int64_t peer_party, std::int64_t round) {
  sodium_ready();
  std::uint8_t shared[crypto_scalarmult_BYTES];
  if (crypto_scalarmult(shared, my_secret.data(), peer_public.data()) != 0)
    throw Error("secure aggregation: party " + std::to_string(peer_party) +
                "'s public key is invalid (a low-order point) in round " + std::to_string(round));
  const bool me_first = my_party < peer_party;
  const Key32& lo = me_first ? my_public : peer_public;
  const Key32& hi = me_first ? peer_public : my_public;
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  crypto_generichash_update(&st, shared, sizeof(shared));
  crypto_generichash_update(&st, lo.data(), lo.size());
  crypto_generichash_update(&st, hi.data(), hi.size());
  std::uint8_t r[8];
  put_u64(r, static_cast<std::uint64_t>(round));
  crypto_generichash_update(&st, r, sizeof(r));
  SecretKey key;
  crypto_generichash_final(&st, key.fill(), SecretKey::kBytes);
  sodium_memzero(shared, sizeof(shared));
  sodium_memzero(&st, sizeof(st));
  return key;
}

void apply_mask(const SecretKey& key, int sign, std::uint64_t* data, std::size_t n) {
  // The stream is made in cache-sized chunks, continuing with the block counter.
  constexpr std::size_t kChunk = 2048;  // uint64 values: 16 KiB, 256 ChaCha20 blocks
  static_assert(kChunk * 8 % 64 == 0, "chunks hold whole ChaCha20 blocks");
  alignas(64) std::uint8_t stream[kChunk * 8];
  const std::uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {};
  std::uint64_t block = 0;
  for (std::size_t done = 0; done < n; done += kChunk) {
    const std::size_t m = std::min(kChunk, n - done);
    std::memset(stream, 0, m * 8);
    crypto_stream_chacha20_xor_ic(stream, stream, m * 8, nonce, block, key.data());
    block += kChunk * 8 / 64;
    std::uint64_t* d = data + done;
    if (sign > 0) {
      for (std::size_t i = 0; i < m; ++i) d[i] += get_u64(stream + 8 * i);
    } else {
      for (std::size_t i = 0; i < m; ++i) d[i] -= get_u64(stream + 8 * i);
    }
  }
}

std::size_t sealed_share_bytes(std::size_t chunks) { return chunks * 8 + crypto_box_MACBYTES; }

std::vector<std::uint8_t> seal_share(const ShamirShare& share, const SecretKey& from_secret,
                                     const Key32& to_public, std::int64_t round, std::int64_t from,
                                     std::int64_t to) {
  sodium_ready();
  std::vector<std::uint8_t> plain(share.y.size() * 8);
  for (std::size_t i = 0; i < share.y.size(); ++i) put_u64(plain.data() + 8 * i, share.y[i]);
  std::vector<std::uint8_t> box(sealed_share_bytes(share.y.size()));
  std::uint8_t nonce[crypto_box_NONCEBYTES];
  make_nonce(nonce, round, from, to);
  if (crypto_box_easy(box.data(), plain.data(), plain.size(), nonce, to_public.data(),
                      from_secret.data()) != 0)
    throw Error("secure aggregation: could not encrypt party " + std::to_string(from) +
                "'s share for party " + std::to_string(to));
  sodium_memzero(plain.data(), plain.size());
  return box;
}

ShamirShare open_share(const std::vector<std::uint8_t>& box, const SecretKey& to_secret,
                       const Key32& from_public, std::int64_t round, std::int64_t from,
                       std::int64_t to, std::size_t chunks) {
  sodium_ready();
  const std::string who = "party " + std::to_string(from) + "'s share for party " +
                          std::to_string(to) + " in round " + std::to_string(round);
  require(box.size() == sealed_share_bytes(chunks),
          "secure aggregation: " + who + " has " + std::to_string(box.size()) +
              " bytes, expected " + std::to_string(sealed_share_bytes(chunks)));
  std::vector<std::uint8_t> plain(chunks * 8);
  std::uint8_t nonce[crypto_box_NONCEBYTES];
  make_nonce(nonce, round, from, to);
  if (crypto_box_open_easy(plain.data(), box.data(), box.size(), nonce, from_public.data(),
                           to_secret.data()) != 0)
    throw Error("secure aggregation: " + who + " does not verify (tampered or wrong key)");
  ShamirShare share;
  share.y.resize(chunks);
  for (std::size_t i = 0; i < chunks; ++i) share.y[i] = get_u64(plain.data() + 8 * i);
  sodium_memzero(plain.data(), plain.size());
  return share;
}

}  // namespace fedgan::privacy
