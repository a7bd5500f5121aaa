// Secure aggregation (Bonawitz et al. 2017, "Practical secure aggregation for privacy-preserving
// machine learning", the semi-honest protocol with pairwise masks): every party masks its
// fixed-point update with ChaCha20 streams shared pairwise through X25519, so that any partial
// sum a rank sees in the allreduce is uniformly random, while the masks cancel exactly in the
// total. Parties that fail after the keys were exchanged are recovered from t-of-n Shamir shares
// of their mask keys; below t survivors the round is abandoned. One object per rank serves all
// of its parties, each with its own keys; a round is begin_round → add/drop per party → finish.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/privacy/secagg_crypto.hpp"

namespace fedgan::privacy {

struct SecAggOptions {
  // Threshold t of the round's m parties: t = min(m, max(2, ⌊fraction·m⌋ + 1)), a majority
  // by default, so that no minority of colluding parties can rebuild a party's mask key.
  double threshold_fraction = 0.5;
  // Reproducible keys and Shamir coefficients (tests and benchmarks only; a real run leaves it
  // empty and draws from the system generator, which does not change the sum: masks cancel).
  std::optional<std::uint64_t> test_seed;
};

// The threshold for m parties (see SecAggOptions::threshold_fraction).
int secagg_threshold(double fraction, std::int64_t parties);

// A participating party hosted on this rank and its public aggregation weight.
struct SecAggParty {
  std::int64_t id = 0;
  double weight = 1.0;
};

// What one round cost this rank. Protocol bytes are the key advertisement, the encrypted
// shares and the revealed shares, counted as this rank sends and receives them (allgatherv:
// every rank receives every record); vector bytes are the uint64 allreduce payloads.
struct SecAggCost {
  std::int64_t protocol_bytes_sent = 0;
  std::int64_t protocol_bytes_received = 0;
  std::int64_t vector_bytes = 0;
  std::int64_t key_agreements = 0;  // X25519 scalar multiplications (masks, boxes, checks)
  std::int64_t mask_streams = 0;    // ChaCha20 streams of the vector's length
  double keys_s = 0, shares_s = 0, mask_s = 0, reduce_s = 0, recover_s = 0;
};

struct SecAggResult {
  bool abandoned = false;
  std::string message;  // why the round was abandoned
  int threshold = 0;
  std::vector<std::int64_t> survivors;  // parties whose inputs are in the sum, ascending
  std::vector<std::int64_t> dropped;    // advertised parties that sent nothing, ascending
  double weight_sum = 0;                // Σ of the survivors' weights (public)
  std::vector<std::uint64_t> sum;       // Σ of the survivors' encoded inputs, mod 2^64
};

class SecAggProtocol {
 public:
  SecAggProtocol(comm::Communicator& comm, std::size_t numel, SecAggOptions options = {});

  // Collective. Round `round` for this rank's participating parties (distinct ids): fresh key
  // pairs per party (one for the masks, one for encrypting shares), the advertisement of ids,
  // weights and public keys (allgatherv), then Shamir shares of each party's mask secret key,
  // encrypted to every other party (allgatherv; each rank opens those addressed to its parties).
  void begin_round(std::int64_t round, const std::vector<SecAggParty>& hosted);

  // Local. Adds the pairwise masks to `encoded` (numel values, in place) and the result to this
  // rank's sum. `fail_after_masking` simulates the party failing once its masked input is
  // ready: the masked vector is computed, then lost.
  void add(std::int64_t party, std::vector<std::uint64_t>& encoded,
           bool fail_after_masking = false);
  // Local. A hosted party that sends nothing this round (e.g. its update was not finite).
  void drop(std::int64_t party);

  // Collective. Sums the ranks' sums, agrees on who dropped, rebuilds each dropped party's mask
  // key from t shares revealed by the survivors and removes its masks from the sum; with fewer
  // than t survivors (or fewer than 2 parties) the round is abandoned and no sum is returned.
  // The round ends here on every path, thrown or returned: the hosted parties' keys are wiped.
  SecAggResult finish();

  const SecAggCost& cost() const { return m_cost; }
  // The advertised parties of the round, ascending.
  std::vector<std::int64_t> parties() const;

 private:
  struct Advertised {
    std::int64_t id;
    double weight;
    Key32 box_public, mask_public;
  };
  enum class State { Pending, Added, Dropped };
  // A party of this rank in the round. Its secret keys are SecretKeys, wiped however the
  // Hosted ends (finish, the next begin_round, an exception, the protocol's destructor); the
  // shares it holds of other parties' mask keys are wiped with it.
  struct Hosted {
    KeyPair box, mask;
    std::map<std::int64_t, ShamirShare> held;  // shares of other parties' mask secret keys
    State state = State::Pending;
    Hosted() = default;
    Hosted(Hosted&&) = default;
    Hosted& operator=(Hosted&&) = default;
    ~Hosted();
  };

  std::size_t index_of(std::int64_t party) const;
  // begin_round's steps: fresh keys for the hosted parties and the advertisement (allgatherv),
  // then the encrypted Shamir shares of each hosted party's mask key (allgatherv).
  void advertise(const std::vector<SecAggParty>& hosted);
  void exchange_shares();
  // finish's steps.
  void require_all_reported() const;
  SecAggResult abandon_too_few(SecAggResult result) const;
  void sum_inputs(SecAggResult& result);  // the uint64 allreduce; who dropped, who survived
  SecAggResult abandon_below_threshold(SecAggResult result) const;
  void remove_dropped_masks(const SecAggResult& result);
  std::map<std::int64_t, std::vector<ShamirShare>> reveal_shares(
      const std::vector<std::int64_t>& dropped);
  SecretKey rebuild_mask_key(std::int64_t party, std::vector<ShamirShare>& shares);

  comm::Communicator& m_comm;
  std::size_t m_numel;
  SecAggOptions m_options;
  std::int64_t m_round = -1;
  int m_threshold = 0;
  std::vector<Advertised> m_parties;
  std::map<std::int64_t, Hosted> m_hosted;
  std::vector<std::uint64_t> m_sum;
  SecAggCost m_cost;
};

}  // namespace fedgan::privacy
