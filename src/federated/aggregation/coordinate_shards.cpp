// Coordinate sharding (see include/fedgan/federated/aggregation/coordinate_shards.hpp).
#include "fedgan/federated/aggregation/coordinate_shards.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <string>

#include "fedgan/core/error.hpp"

namespace fedgan::federated {

ShardRange coordinate_shard(std::int64_t numel, int ranks, int rank) {
  require(ranks > 0 && rank >= 0 && rank < ranks && numel >= 0,
          "coordinate_shard: bad rank " + std::to_string(rank) + " of " + std::to_string(ranks));
  return {rank * numel / ranks, (rank + 1) * numel / ranks};
}

namespace {

// One directory record as it travels: party id, weight, squared norm.
struct ShardRecord {
  std::int64_t party;
  double weight;
  double norm2;
};

double squared_norm(const float* v, std::int64_t n) {
  double sum = 0;
  for (std::int64_t i = 0; i < n; ++i) sum += static_cast<double>(v[i]) * v[i];
  return sum;
}

}  // namespace

PartyDirectory gather_party_directory(comm::Communicator& comm,
                                      const std::vector<PartyVector>& mine, std::int64_t numel) {
  // [numel | record...] as bytes: one allgatherv, whose result every rank parses alike.
  std::vector<std::uint8_t> bytes(sizeof(std::int64_t) + mine.size() * sizeof(ShardRecord));
  std::memcpy(bytes.data(), &numel, sizeof(numel));
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const ShardRecord rec{mine[i].party, mine[i].weight, squared_norm(mine[i].values, numel)};
    std::memcpy(bytes.data() + sizeof(numel) + i * sizeof(rec), &rec, sizeof(rec));
  }
  const auto all = comm.allgatherv(bytes.data(), bytes.size());

  PartyDirectory dir;
  std::set<int> seen;
  for (std::size_t r = 0; r < all.size(); ++r) {
    const auto& part = all[r];
    std::int64_t n = 0;
    std::memcpy(&n, part.data(), sizeof(n));
    if (r == 0) dir.numel = n;
    // Every rank sees the same gathered bytes, so every rank throws the same error.
    if (n != dir.numel)
      throw Error("robust aggregation: rank " + std::to_string(r) + " holds updates of " +
                      std::to_string(n) + " values, rank 0 of " + std::to_string(dir.numel) +
                      " (every update must have the same length)",
                  /*collective=*/true);
    const std::size_t count = (part.size() - sizeof(n)) / sizeof(ShardRecord);
    dir.rank_count.push_back(static_cast<int>(count));
    for (std::size_t i = 0; i < count; ++i) {
      ShardRecord rec{};
      std::memcpy(&rec, part.data() + sizeof(n) + i * sizeof(rec), sizeof(rec));
      if (!seen.insert(static_cast<int>(rec.party)).second)
        throw Error("robust aggregation: party " + std::to_string(rec.party) +
                        " contributed two updates in one round",
                    /*collective=*/true);
      dir.party.push_back(static_cast<int>(rec.party));
      dir.weight.push_back(rec.weight);
      dir.norm2.push_back(rec.norm2);
    }
  }
  return dir;
}

ShardBlock exchange_shards(comm::Communicator& comm, const PartyDirectory& directory,
                           const std::vector<PartyVector>& mine) {
  const int R = comm.size(), me = comm.rank();
  require(static_cast<int>(directory.rank_count.size()) == R &&
              directory.rank_count[me] == static_cast<int>(mine.size()),
          "exchange_shards: the directory does not describe this rank's updates");
  const std::int64_t N = directory.numel;
  // MPI counts are ints: check every rank's totals here, where every rank computes the same
  // answer, rather than failing on one rank inside the collective.
  std::int64_t largest = 0, widest = 0;
  for (int r = 0; r < R; ++r) {
    largest = std::max(largest, directory.rank_count[r] * N);
    widest = std::max(widest, coordinate_shard(N, R, r).size());
  }
  largest = std::max(largest, directory.size() * widest);
  if (largest > std::numeric_limits<int>::max())
    throw Error("robust aggregation: a rank would exchange " + std::to_string(largest) +
                    " values in one all-to-all, over MPI's limit of 2^31 - 1; use more ranks "
                    "or fewer parties per rank",
                /*collective=*/true);
  ShardBlock block;
  block.range = coordinate_shard(N, R, me);
  block.rows = directory.size();

  // Send: for each destination d, each of my parties' values of d's shard (the layout d
  // receives: my parties in my order, one after another).
  std::vector<std::size_t> send_counts(R), recv_counts(R);
  std::vector<float> send(mine.size() * static_cast<std::size_t>(N));
  std::size_t at = 0;
  for (int d = 0; d < R; ++d) {
    const auto range = coordinate_shard(N, R, d);
    send_counts[d] = mine.size() * static_cast<std::size_t>(range.size());
    for (const auto& p : mine) {
      std::copy(p.values + range.begin, p.values + range.end, send.begin() + at);
      at += static_cast<std::size_t>(range.size());
    }
    recv_counts[d] = static_cast<std::size_t>(directory.rank_count[d]) *
                     static_cast<std::size_t>(block.range.size());
  }
  // Receive in rank order, each rank's parties in its order: exactly the directory's order.
  block.values.resize(static_cast<std::size_t>(block.rows) *
                      static_cast<std::size_t>(block.range.size()));
  comm.alltoallv(send.data(), send_counts, block.values.data(), recv_counts, comm::DType::Float32);
  return block;
}

std::vector<float> gather_shards(comm::Communicator& comm, const std::vector<float>& mine,
                                 std::int64_t numel) {
  const int R = comm.size();
  if (numel > std::numeric_limits<int>::max())
    throw Error("robust aggregation: " + std::to_string(numel) +
                    " values exceed MPI's limit of 2^31 - 1 per allgather",
                /*collective=*/true);
  std::vector<std::size_t> counts(R);
  for (int r = 0; r < R; ++r)
    counts[r] = static_cast<std::size_t>(coordinate_shard(numel, R, r).size());
  require(mine.size() == counts[comm.rank()],
          "gather_shards: this rank's result does not match its shard");
  std::vector<float> out(static_cast<std::size_t>(numel));
  comm.allgatherv_into(mine.data(), out.data(), counts, comm::DType::Float32);
  return out;
}

}  // namespace fedgan::federated
