// Collective robust aggregation (see include/fedgan/federated/aggregation/robust.hpp).
#include "fedgan/federated/aggregation/robust.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "fedgan/core/error.hpp"
#include "fedgan/federated/aggregation/robust_rules.hpp"

namespace fedgan::federated {
namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

// "floor(beta*m) = floor(0.1*8) = 0"
std::string trimmed_arithmetic(double beta, int m) {
  return "floor(beta*m) = floor(" + number(beta) + "*" + std::to_string(m) +
         ") = " + std::to_string(trimmed_count(beta, m));
}

// What trims one value per end of m: the smallest --trim-beta, 1/m, as a number the option
// accepts (rounded up in the 4th decimal, so that β·m ≥ 1); none below 0.5 when m ≤ 2.
std::string one_per_side(int m) {
  if (m <= 2)
    return "with m = " + std::to_string(m) + " no --trim-beta below 0.5 trims one per side";
  return "the smallest --trim-beta that trims one per side is 1/m = 1/" + std::to_string(m) +
         ", i.e. --trim-beta " + number(std::ceil(1e4 / m) / 1e4);
}

}  // namespace

std::string trimmed_mean_setup_problem(double beta, int drawn, int parties,
                                       double participation) {
  if (trimmed_count(beta, drawn) >= 1) return "";
  return "--aggregator trimmed-mean --trim-beta " + number(beta) + " would trim " +
         trimmed_arithmetic(beta, drawn) + " updates at each end, m = " + std::to_string(drawn) +
         " parties taking part in a round (of " + std::to_string(parties) +
         ", --participation " + number(participation) +
         "): every round would be an unweighted mean that protects against no attacker; " +
         one_per_side(drawn) +
         (drawn <= 2 ? ": use --aggregator median, or more parties per round"
                     : ": raise --trim-beta to at least that, or use --aggregator median");
}

std::string trimmed_mean_round_warning(double beta, int arrived, int drawn, int round) {
  if (arrived <= 0 || trimmed_count(beta, arrived) >= 1) return "";
  return "round " + std::to_string(round) + ": --aggregator trimmed-mean --trim-beta " +
         number(beta) + " trimmed " + trimmed_arithmetic(beta, arrived) +
         " updates at each end: only m = " + std::to_string(arrived) + " of the " +
         std::to_string(drawn) +
         " parties drawn sent an update (the others were skipped, --skip-nonfinite), so this "
         "round's aggregate is an unweighted mean that protects against no attacker (" +
         one_per_side(arrived) + ")";
}

namespace {

// Krum and Multi-Krum on the shards: one Gram allreduce, the same choice on every rank, the
// chosen updates' weighted mean on each shard.
std::vector<float> krum_on_shards(comm::Communicator& comm, const AggregatorConfig& config,
                                  const PartyDirectory& dir, const ShardBlock& block,
                                  RobustResult& result) {
  const int P = dir.size();
  const int f = config.krum_f;
  if (P <= 2 * f + 2)
    throw Error("--aggregator " + to_string(config.rule) + ": " + std::to_string(P) +
                    " contributing parties cannot tolerate --krum-f " + std::to_string(f) +
                    " (Krum needs more than 2f + 2 = " + std::to_string(2 * f + 2) + ")",
                /*collective=*/true);
  std::vector<double> gram(static_cast<std::size_t>(P) * P, 0.0);
  accumulate_gram(block.values.data(), P, block.range.size(), gram.data());
  comm.allreduce_sum(gram.data(), gram.size());
  int m = 1;
  if (config.rule == AggregationRule::MultiKrum)
    m = config.krum_m <= 0 ? P - f : std::min(config.krum_m, P - f);
  std::vector<int> chosen = krum_select(krum_scores(gram, P, f), dir.party, m);
  // MPI does not promise bit-identical reductions on every rank; one choice must hold
  // everywhere, so rank 0's goes to all (m ints).
  comm.broadcast(chosen.data(), chosen.size() * sizeof(int), 0);
  for (int i : chosen) {
    result.selected.push_back(dir.party[i]);
  }
  result.total_weight = 0;
  for (int i : chosen) result.total_weight += dir.weight[i];
  std::vector<float> shard(static_cast<std::size_t>(block.range.size()));
  weighted_rows_mean(block.values.data(), block.range.size(), chosen, dir.weight, shard.data());
  return shard;
}

// Norm bounding: no shards; each rank clips its own updates and one float64 allreduce sums.
std::vector<float> norm_bounded_mean(comm::Communicator& comm, const PartyDirectory& dir,
                                     const std::vector<PartyVector>& mine, RobustResult& result) {
  std::vector<double> norms(dir.norm2.size());
  for (std::size_t i = 0; i < norms.size(); ++i) norms[i] = std::sqrt(dir.norm2[i]);
  const double bound = median_of(norms);
  result.bound = bound;
  for (std::size_t i = 0; i < norms.size(); ++i)
    if (norms[i] > bound) result.selected.push_back(dir.party[i]);

  const std::int64_t N = dir.numel;
  std::vector<double> sum(static_cast<std::size_t>(N), 0.0);
  result.buffer_values = 2 * N;  // float64
  for (const auto& p : mine) {
    const double norm = std::sqrt(dir.norm2[static_cast<std::size_t>(
        std::find(dir.party.begin(), dir.party.end(), p.party) - dir.party.begin())]);
    const double scale = norm > bound ? bound / norm : 1.0;
    const double w = p.weight * scale;
    for (std::int64_t c = 0; c < N; ++c) sum[c] += w * p.values[c];
  }
  comm.allreduce_sum(sum.data(), sum.size());
  std::vector<float> out(static_cast<std::size_t>(N));
  for (std::int64_t c = 0; c < N; ++c) out[c] = static_cast<float>(sum[c] / result.total_weight);
  return out;
}

}  // namespace

RobustResult robust_aggregate(comm::Communicator& comm, const AggregatorConfig& config,
                              const std::vector<PartyVector>& mine, std::int64_t numel) {
  require(is_robust(config.rule),
          "robust_aggregate: " + to_string(config.rule) + " is not a robust rule");
  RobustResult result;
  const PartyDirectory dir = gather_party_directory(comm, mine, numel);
  result.parties = dir.size();
  for (double w : dir.weight) result.total_weight += w;
  if (dir.size() == 0) return result;  // every rank sees it: nothing to aggregate

  if (config.rule == AggregationRule::NormBound) {
    result.update = norm_bounded_mean(comm, dir, mine, result);
    return result;
  }

  const ShardBlock block = exchange_shards(comm, dir, mine);
  result.buffer_values = static_cast<std::int64_t>(block.values.size()) +
                         static_cast<std::int64_t>(mine.size()) * numel;  // received + sent
  std::vector<float> shard(static_cast<std::size_t>(block.range.size()));
  switch (config.rule) {
    case AggregationRule::Median:
      coordinate_median(block.values.data(), block.rows, block.range.size(), shard.data());
      break;
    case AggregationRule::TrimmedMean:
      coordinate_trimmed_mean(block.values.data(), block.rows, block.range.size(),
                              trimmed_count(config.trim_beta, block.rows), shard.data());
      break;
    case AggregationRule::Krum:
    case AggregationRule::MultiKrum:
      shard = krum_on_shards(comm, config, dir, block, result);
      break;
    case AggregationRule::FedAvg:
    case AggregationRule::NormBound:
      break;  // refused, handled above
  }
  result.update = gather_shards(comm, shard, dir.numel);
  return result;
}

}  // namespace fedgan::federated
