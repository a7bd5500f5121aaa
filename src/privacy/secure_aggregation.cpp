// The secure aggregation protocol over a Communicator (see
// include/fedgan/privacy/secure_aggregation.hpp). The "server" of the paper is played by all
// ranks together: every rank sees the same advertisements, the same summed vector and the same
// revealed shares, so every rank computes the same result, and the recovery work is shared out.
#include "fedgan/privacy/secure_aggregation.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "fedgan/comm/collective.hpp"
#include "fedgan/core/error.hpp"

namespace fedgan::privacy {
namespace {

using SecAggClock = std::chrono::steady_clock;
double secagg_seconds_since(SecAggClock::time_point t) {
  return std::chrono::duration<double>(SecAggClock::now() - t).count();
}

// Records travel as flat little-endian byte strings (every rank is the same machine type).
class ByteWriter {
 public:
  template <class T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>, "plain values only");
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    m_bytes.insert(m_bytes.end(), p, p + sizeof(T));
  }
  void put_bytes(const std::uint8_t* p, std::size_t n) { m_bytes.insert(m_bytes.end(), p, p + n); }
  const std::vector<std::uint8_t>& bytes() const { return m_bytes; }

 private:
  std::vector<std::uint8_t> m_bytes;
};

class ByteReader {
 public:
  explicit ByteReader(const std::vector<std::uint8_t>& b) : m_bytes(b) {}
  template <class T>
  T get() {
    T v;
    take(reinterpret_cast<std::uint8_t*>(&v), sizeof(T));
    return v;
  }
  void take(std::uint8_t* out, std::size_t n) {
    require(m_at + n <= m_bytes.size(), "secure aggregation: a received record is truncated");
    std::memcpy(out, m_bytes.data() + m_at, n);
    m_at += n;
  }
  bool done() const { return m_at == m_bytes.size(); }

 private:
  const std::vector<std::uint8_t>& m_bytes;
  std::size_t m_at = 0;
};

std::int64_t total_size(const std::vector<std::vector<std::uint8_t>>& parts) {
  std::int64_t n = 0;
  for (auto& p : parts) n += static_cast<std::int64_t>(p.size());
  return n;
}

constexpr std::size_t kMaskKeyChunks = (32 + kShamirChunkBytes - 1) / kShamirChunkBytes;

}  // namespace

int secagg_threshold(double fraction, std::int64_t parties) {
  require(fraction > 0 && fraction <= 1,
          "secure aggregation: the threshold fraction must be in "
          "(0, 1] (got " +
              std::to_string(fraction) + ")");
  const auto t = static_cast<std::int64_t>(std::floor(fraction * static_cast<double>(parties))) + 1;
  return static_cast<int>(std::min(parties, std::max<std::int64_t>(2, t)));
}

SecAggProtocol::SecAggProtocol(comm::Communicator& comm, std::size_t numel,
                                   SecAggOptions options)
    : m_comm(comm), m_numel(numel), m_options(options) {
  secagg_threshold(options.threshold_fraction, 2);  // validates the fraction
  sodium_ready();
}

std::vector<std::int64_t> SecAggProtocol::parties() const {
  std::vector<std::int64_t> ids;
  for (auto& p : m_parties) ids.push_back(p.id);
  return ids;
}

std::size_t SecAggProtocol::index_of(std::int64_t party) const {
  auto it = std::lower_bound(m_parties.begin(), m_parties.end(), party,
                             [](const Advertised& a, std::int64_t id) { return a.id < id; });
  require(it != m_parties.end() && it->id == party,
          "secure aggregation: party " + std::to_string(party) + " was not advertised in round " +
              std::to_string(m_round));
  return static_cast<std::size_t>(it - m_parties.begin());
}

SecAggProtocol::Hosted::~Hosted() {
  for (auto& [u, share] : held) wipe_bytes(share.y.data(), share.y.size() * sizeof(share.y[0]));
}

void SecAggProtocol::begin_round(std::int64_t round, const std::vector<SecAggParty>& hosted) {
  m_round = round;
  m_cost = {};
  m_hosted.clear();  // a round that never finished: its keys are wiped here
  m_parties.clear();
  m_sum.assign(m_numel, 0);

  const auto t_keys = SecAggClock::now();
  advertise(hosted);
  m_cost.keys_s = secagg_seconds_since(t_keys);

  const auto m = static_cast<std::int64_t>(m_parties.size());
  m_threshold = m >= 2 ? secagg_threshold(m_options.threshold_fraction, m) : 0;
  if (m < 2) return;  // nothing to protect or share; finish() abandons the round
  const auto t_shares = SecAggClock::now();
  exchange_shares();
  m_cost.shares_s = secagg_seconds_since(t_shares);
}

void SecAggProtocol::advertise(const std::vector<SecAggParty>& hosted) {
  // Round 0 of the paper: each party advertises two fresh public keys.
  ByteWriter mine;
  for (auto& p : hosted) {
    Hosted h;
    h.box = make_key_pair(m_options.test_seed, "secagg-box", p.id, m_round);
    h.mask = make_key_pair(m_options.test_seed, "secagg-mask", p.id, m_round);
    mine.put(p.id);
    mine.put(p.weight);
    mine.put_bytes(h.box.public_key.data(), 32);
    mine.put_bytes(h.mask.public_key.data(), 32);
    require(m_hosted.emplace(p.id, std::move(h)).second,
            "secure aggregation: party " + std::to_string(p.id) + " is listed twice");
  }
  const auto all = m_comm.allgatherv(mine.bytes().data(), mine.bytes().size());
  m_cost.protocol_bytes_sent += static_cast<std::int64_t>(mine.bytes().size());
  m_cost.protocol_bytes_received += total_size(all);
  for (auto& part : all) {
    ByteReader in(part);
    while (!in.done()) {
      Advertised a;
      a.id = in.get<std::int64_t>();
      a.weight = in.get<double>();
      in.take(a.box_public.data(), 32);
      in.take(a.mask_public.data(), 32);
      m_parties.push_back(a);
    }
  }
  std::sort(m_parties.begin(), m_parties.end(),
            [](const Advertised& a, const Advertised& b) { return a.id < b.id; });
  for (std::size_t i = 1; i < m_parties.size(); ++i)
    if (m_parties[i].id == m_parties[i - 1].id)
      throw Error("secure aggregation: party " + std::to_string(m_parties[i].id) +
                      " is hosted by two ranks",
                  /*collective=*/true);
}

void SecAggProtocol::exchange_shares() {
  // Round 1 of the paper: party u shares its mask secret key t-of-m among all m parties,
  // itself included (holder v evaluates at x = index(v) + 1), and encrypts each share to its
  // holder. A dropped party's own share is lost with it, so recovery needs t survivors.
  ByteWriter mine;
  for (auto& [u, h] : m_hosted) {
    std::vector<std::uint64_t> xs;
    std::vector<std::int64_t> holders;
    for (std::size_t i = 0; i < m_parties.size(); ++i) {
      xs.push_back(static_cast<std::uint64_t>(i + 1));
      holders.push_back(m_parties[i].id);
    }
    const auto shares =
        shamir_split(h.mask.secret_key.data(), 32, m_threshold, xs,
                     make_random_bytes(m_options.test_seed, "secagg-shamir", u, m_round));
    for (std::size_t k = 0; k < holders.size(); ++k) {
      const auto box =
          seal_share(shares[k], h.box.secret_key, m_parties[index_of(holders[k])].box_public,
                     m_round, u, holders[k]);
      m_cost.key_agreements += 1;
      mine.put(u);
      mine.put(holders[k]);
      mine.put_bytes(box.data(), box.size());
    }
  }
  const auto all = m_comm.allgatherv(mine.bytes().data(), mine.bytes().size());
  m_cost.protocol_bytes_sent += static_cast<std::int64_t>(mine.bytes().size());
  m_cost.protocol_bytes_received += total_size(all);
  // Each rank opens the boxes addressed to its parties; a box that fails to open on one rank
  // must stop every rank.
  collective_try(m_comm, [&] {
    std::vector<std::uint8_t> box(sealed_share_bytes(kMaskKeyChunks));
    for (auto& part : all) {
      ByteReader in(part);
      while (!in.done()) {
        const auto from = in.get<std::int64_t>();
        const auto to = in.get<std::int64_t>();
        in.take(box.data(), box.size());
        auto it = m_hosted.find(to);
        if (it == m_hosted.end()) continue;
        ShamirShare share =
            open_share(box, it->second.box.secret_key, m_parties[index_of(from)].box_public,
                       m_round, from, to, kMaskKeyChunks);
        m_cost.key_agreements += 1;
        share.x = static_cast<std::uint64_t>(index_of(to) + 1);
        it->second.held[from] = std::move(share);
      }
    }
  });
}

void SecAggProtocol::add(std::int64_t party, std::vector<std::uint64_t>& encoded,
                           bool fail_after_masking) {
  auto it = m_hosted.find(party);
  require(it != m_hosted.end() && it->second.state == State::Pending,
          "secure aggregation: party " + std::to_string(party) +
              " is not a pending party of this rank in round " + std::to_string(m_round));
  require(encoded.size() == m_numel, "secure aggregation: party " + std::to_string(party) +
                                         "'s input has " + std::to_string(encoded.size()) +
                                         " values, expected " + std::to_string(m_numel));
  const auto t_mask = SecAggClock::now();
  Hosted& h = it->second;
  // Round 2 of the paper: y_u = x_u + Σ_{v>u} PRG(s_uv) − Σ_{v<u} PRG(s_uv)  (mod 2^64).
  for (auto& v : m_parties) {
    if (v.id == party) continue;
    const SecretKey key =
        mask_key(h.mask.secret_key, h.mask.public_key, party, v.mask_public, v.id, m_round);
    apply_mask(key, party < v.id ? +1 : -1, encoded.data(), m_numel);
    m_cost.key_agreements += 1;
    m_cost.mask_streams += 1;
  }
  if (fail_after_masking) {
    h.state = State::Dropped;
  } else {
    for (std::size_t i = 0; i < m_numel; ++i) m_sum[i] += encoded[i];
    h.state = State::Added;
  }
  m_cost.mask_s += secagg_seconds_since(t_mask);
}

void SecAggProtocol::drop(std::int64_t party) {
  auto it = m_hosted.find(party);
  require(it != m_hosted.end() && it->second.state == State::Pending,
          "secure aggregation: party " + std::to_string(party) +
              " is not a pending party of this rank in round " + std::to_string(m_round));
  it->second.state = State::Dropped;
}

namespace {

// Ends the protocol's round when finish() leaves, by return or by exception: the hosted parties
// go, and with them their secret keys (SecretKey wipes itself) and the shares they held.
template <class Hosted>
class EndOfRound {
 public:
  explicit EndOfRound(Hosted& hosted) : m_hosted(hosted) {}
  EndOfRound(const EndOfRound&) = delete;
  EndOfRound& operator=(const EndOfRound&) = delete;
  ~EndOfRound() { m_hosted.clear(); }

 private:
  Hosted& m_hosted;
};

}  // namespace

SecAggResult SecAggProtocol::finish() {
  const EndOfRound end_of_round(m_hosted);
  require_all_reported();
  SecAggResult result;
  result.threshold = m_threshold;
  if (m_parties.size() < 2) return abandon_too_few(std::move(result));
  sum_inputs(result);
  if (static_cast<std::int64_t>(result.survivors.size()) < m_threshold)
    return abandon_below_threshold(std::move(result));
  if (!result.dropped.empty()) remove_dropped_masks(result);
  result.sum = std::move(m_sum);
  m_sum.clear();
  return result;
}

void SecAggProtocol::require_all_reported() const {
  for (auto& [id, h] : m_hosted)
    require(h.state != State::Pending, "secure aggregation: party " + std::to_string(id) +
                                           " neither sent an input nor dropped in round " +
                                           std::to_string(m_round));
}

SecAggResult SecAggProtocol::abandon_too_few(SecAggResult result) const {
  const auto m = static_cast<std::int64_t>(m_parties.size());
  result.abandoned = true;
  result.message = "round " + std::to_string(m_round) + ": " + std::to_string(m) + " part" +
                   (m == 1 ? "y" : "ies") +
                   " took part; secure aggregation needs at least 2 (a sum of one party is "
                   "its update), so the round is abandoned and the model is unchanged";
  for (auto& p : m_parties) result.dropped.push_back(p.id);
  return result;
}

void SecAggProtocol::sum_inputs(SecAggResult& result) {
  // Round 2 ends at the "server": the masked inputs are summed (uint64 wraps exactly).
  const auto t_reduce = SecAggClock::now();
  m_comm.allreduce_sum(m_sum.data(), m_sum.size(), comm::DType::UInt64);
  m_cost.vector_bytes += static_cast<std::int64_t>(m_sum.size() * 8);
  // Who dropped: each rank names its parties that sent nothing.
  std::vector<std::int64_t> mine;
  for (auto& [id, h] : m_hosted)
    if (h.state == State::Dropped) mine.push_back(id);
  const auto gone = m_comm.allgatherv(mine.data(), mine.size() * sizeof(std::int64_t));
  m_cost.protocol_bytes_sent += static_cast<std::int64_t>(mine.size() * sizeof(std::int64_t));
  m_cost.protocol_bytes_received += total_size(gone);
  for (auto& part : gone) {
    ByteReader in(part);
    while (!in.done()) result.dropped.push_back(in.get<std::int64_t>());
  }
  std::sort(result.dropped.begin(), result.dropped.end());
  for (auto& p : m_parties)
    if (!std::binary_search(result.dropped.begin(), result.dropped.end(), p.id)) {
      result.survivors.push_back(p.id);
      result.weight_sum += p.weight;
    }
  m_cost.reduce_s = secagg_seconds_since(t_reduce);
}

SecAggResult SecAggProtocol::abandon_below_threshold(SecAggResult result) const {
  result.abandoned = true;
  result.weight_sum = 0;
  result.message = "round " + std::to_string(m_round) + ": " +
                   std::to_string(result.survivors.size()) + " of " +
                   std::to_string(m_parties.size()) +
                   " parties survived masking, fewer than the secure-aggregation threshold t = " +
                   std::to_string(m_threshold) +
                   " needed to recover the dropped parties' masks; the round is abandoned and "
                   "the model is unchanged";
  return result;
}

void SecAggProtocol::remove_dropped_masks(const SecAggResult& result) {
  // Round 3 of the paper: each surviving party reveals its shares of the dropped parties'
  // mask keys; every rank rebuilds the keys and the ranks share the work of removing the
  // dropped parties' masks from the survivors' inputs.
  const auto t_recover = SecAggClock::now();
  auto shares = reveal_shares(result.dropped);
  std::vector<std::uint64_t> correction(m_numel, 0);
  std::int64_t pair = 0;
  for (auto u : result.dropped) {
    const SecretKey secret = rebuild_mask_key(u, shares[u]);
    const Advertised& du = m_parties[index_of(u)];
    for (auto v : result.survivors) {
      // Survivor v applied sign(v < u ? +1 : −1)·PRG(s_uv); the correction takes it back.
      if (pair++ % m_comm.size() != m_comm.rank()) continue;
      const Advertised& pv = m_parties[index_of(v)];
      const SecretKey key = mask_key(secret, du.mask_public, u, pv.mask_public, v, m_round);
      apply_mask(key, v < u ? -1 : +1, correction.data(), m_numel);
      m_cost.key_agreements += 1;
      m_cost.mask_streams += 1;
    }
  }
  m_comm.allreduce_sum(correction.data(), correction.size(), comm::DType::UInt64);
  m_cost.vector_bytes += static_cast<std::int64_t>(correction.size() * 8);
  for (std::size_t i = 0; i < m_numel; ++i) m_sum[i] += correction[i];
  m_cost.recover_s = secagg_seconds_since(t_recover);
}

std::map<std::int64_t, std::vector<ShamirShare>> SecAggProtocol::reveal_shares(
    const std::vector<std::int64_t>& dropped) {
  // Every surviving party of this rank reveals what it holds of each dropped party's mask key.
  ByteWriter reveal;
  for (auto& [v, h] : m_hosted) {
    if (h.state != State::Added) continue;
    for (auto u : dropped) {
      const auto& share = h.held.at(u);
      reveal.put(u);
      reveal.put(share.x);
      for (auto y : share.y) reveal.put(y);
    }
  }
  const auto revealed = m_comm.allgatherv(reveal.bytes().data(), reveal.bytes().size());
  m_cost.protocol_bytes_sent += static_cast<std::int64_t>(reveal.bytes().size());
  m_cost.protocol_bytes_received += total_size(revealed);
  std::map<std::int64_t, std::vector<ShamirShare>> shares;
  for (auto& part : revealed) {
    ByteReader in(part);
    while (!in.done()) {
      const auto u = in.get<std::int64_t>();
      ShamirShare s;
      s.x = in.get<std::uint64_t>();
      s.y.resize(kMaskKeyChunks);
      for (auto& y : s.y) y = in.get<std::uint64_t>();
      shares[u].push_back(std::move(s));
    }
  }
  return shares;
}

SecretKey SecAggProtocol::rebuild_mask_key(std::int64_t party, std::vector<ShamirShare>& shares) {
  // The same t shares, in the same order, on every rank: every rank rebuilds the same key.
  std::sort(shares.begin(), shares.end(),
            [](const ShamirShare& a, const ShamirShare& b) { return a.x < b.x; });
  auto bytes = shamir_combine(shares, m_threshold, SecretKey::kBytes);
  SecretKey secret = SecretKey::take(bytes.data());
  if (public_key_of(secret) != m_parties[index_of(party)].mask_public)
    throw Error("secure aggregation: the shares of party " + std::to_string(party) +
                    " do not rebuild its mask key in round " + std::to_string(m_round),
                /*collective=*/true);
  m_cost.key_agreements += 1;
  return secret;
}

}  // namespace fedgan::privacy
