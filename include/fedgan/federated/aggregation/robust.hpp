// Robust aggregation across ranks: each rank passes its parties' updates (flat float32 of equal
// length N, several parties per rank allowed) and every rank gets the same aggregate.
//   median, trimmed-mean  coordinate-wise (Yin et al. 2018) on coordinate shards: one alltoallv,
//                         the rule on this rank's N/R coordinates, one allgatherv
//   krum, multi-krum      Blanchard et al. 2017: squared distances from a P×P Gram matrix summed
//                         over the shards with one float64 allreduce; the chosen updates'
//                         n_k-weighted mean is formed on the shards
//   norm-bound            every update clipped to the median update norm (norm bounding, Sun et
//                         al. 2019, with the median as the bound), then the n_k-weighted mean
//                         with one float64 allreduce (no shards)
// Memory on a rank: its own updates (L·N floats), plus for the sharded rules a send copy of
// them and the received block of P·N/R floats — not P·N.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/federated/aggregation/aggregation_rule.hpp"
#include "fedgan/federated/aggregation/coordinate_shards.hpp"

namespace fedgan::federated {

struct RobustResult {
  std::vector<float> update;       // N values, the same on every rank; empty when no party came
  int parties = 0;                 // contributing parties (all ranks)
  double total_weight = 0;         // Σ n_k over them
  std::vector<int> selected;       // krum/multi-krum: party ids chosen; norm-bound: parties clipped
  double bound = 0;                // norm-bound: the median norm every update was clipped to
  std::int64_t buffer_values = 0;  // floats this rank held for the rule beyond its own updates
};

// The trimmed mean against the m updates of a round (⌊β·m⌋ = 0 keeps every value: an unweighted
// mean that protects against no attacker). At setup, m = the parties drawn per round (`drawn` of
// `parties`, --participation `participation`): "" when ⌊β·m⌋ ≥ 1, else the refusal, naming β, m,
// ⌊β·m⌋ = 0, the smallest β that trims one per side (1/m) and what to do.
std::string trimmed_mean_setup_problem(double beta, int drawn, int parties, double participation);
// In a round where only `arrived` of the `drawn` parties' updates reached the rule (the others
// skipped with --skip-nonfinite): "" when ⌊β·arrived⌋ ≥ 1, else the warning for round `round`.
std::string trimmed_mean_round_warning(double beta, int arrived, int drawn, int round);

// Collective: every rank calls it in the same round with its own (possibly no) updates, each
// `numel` values long; `config.rule` is a robust rule (is_robust). Errors that depend on the
// gathered parties (unequal lengths, too few parties for Krum's f) are collective fedgan::Errors on
// every rank.
RobustResult robust_aggregate(comm::Communicator& comm, const AggregatorConfig& config,
                              const std::vector<PartyVector>& mine, std::int64_t numel);

}  // namespace fedgan::federated
