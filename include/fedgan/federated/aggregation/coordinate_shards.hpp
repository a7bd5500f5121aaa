// Coordinate sharding for aggregators that need every party's update, not just their sum
// (median, trimmed mean, Krum): rank r owns coordinates [r·N/R, (r+1)·N/R); one all-to-all
// gives each rank every party's values of its shard (about P·N/R floats instead of P·N), the
// rule runs there, and one allgather rebuilds the whole result on every rank.
// LibTorch-free: updates are plain float32 arrays.
#pragma once

#include <cstdint>
#include <vector>

#include "fedgan/comm/communicator.hpp"

namespace fedgan::federated {

// One party's update as this rank holds it: `numel` float32 values, not owned.
struct PartyVector {
  int party = 0;        // global party id
  double weight = 1.0;  // n_k, the party's shard size
  const float* values = nullptr;
};

// A half-open range of coordinates.
struct ShardRange {
  std::int64_t begin = 0, end = 0;
  std::int64_t size() const { return end - begin; }
};

// Rank `rank`'s coordinates of `numel` over `ranks` ranks: [rank·numel/ranks, (rank+1)·numel/ranks)
// in integer arithmetic, so the shards differ in size by at most one (some may be empty).
ShardRange coordinate_shard(std::int64_t numel, int ranks, int rank);

// Every contributing party of the round as every rank sees it: rank order, then each rank's
// own order. Gathered with one allgatherv; the same on every rank.
struct PartyDirectory {
  std::int64_t numel = 0;       // values per update (equal on every rank: checked)
  std::vector<int> party;       // global ids
  std::vector<double> weight;   // n_k
  std::vector<double> norm2;    // squared L2 norm of each update (float64 sum)
  std::vector<int> rank_count;  // parties contributed by each rank
  int size() const { return static_cast<int>(party.size()); }
};

// Collective. `numel` is this rank's update length (it must be the same on every rank, also
// on a rank without parties; a mismatch or a party id given twice is a collective
// fedgan::Error on every rank).
PartyDirectory gather_party_directory(comm::Communicator& comm,
                                      const std::vector<PartyVector>& mine, std::int64_t numel);

// This rank's shard of every directory party's update, row i = directory party i.
struct ShardBlock {
  ShardRange range;
  int rows = 0;
  std::vector<float> values;  // rows × range.size(), row-major
  const float* row(int i) const {
    return values.data() + static_cast<std::int64_t>(i) * range.size();
  }
};

// Collective: one alltoallv of float32. Needs `mine` in the order given to the directory.
ShardBlock exchange_shards(comm::Communicator& comm, const PartyDirectory& directory,
                           const std::vector<PartyVector>& mine);

// Collective: every rank's result for its own shard (coordinate_shard of `numel`) → the whole
// vector on every rank, with one allgatherv.
std::vector<float> gather_shards(comm::Communicator& comm, const std::vector<float>& mine,
                                 std::int64_t numel);

}  // namespace fedgan::federated
