// Aggregator: turns the round's updates into one aggregate that every rank holds. The run hands
// the round a factory (FederatedConfig::aggregator_factory); make_aggregator builds the rules
// named by --aggregator, and privacy::make_secure_fedavg_aggregator the one of --secure-agg. `fedavg` streams each update into one
// float64 buffer (FusedAggregator) and sums it with a single allreduce; a rule that needs the
// individual updates (median, Krum) keeps this rank's updates in accumulate() and runs its own
// collectives in reduce(). How to add one: docs/DESIGN.md, "Extending a round".
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/federated/round/update.hpp"

namespace fedgan::federated {

struct AggregatorConfig {
  AggregatorConfig(std::string rule = "fedavg") : name(std::move(rule)) {}  // NOLINT: implicit
  std::string name;  // one of aggregator_names()
  // Robust rules (federated/robust.hpp): trimmed-mean's β, Krum's f and Multi-Krum's m.
  double trim_beta = 0.1;
  int krum_f = 1;
  int krum_m = 0;  // 0: P − f
};

// Why these aggregation settings cannot work with `parties` parties of which ⌈participation·P⌉
// take part in a round ("" when they can): Krum's f against the participants, Multi-Krum's m,
// a trimmed mean that would trim nothing (⌊β·m⌋ = 0).
std::string aggregator_settings_problem(const AggregatorConfig& config, int parties,
                                        double participation);

class Aggregator {
 public:
  virtual ~Aggregator() = default;
  virtual std::string name() const = 0;
  // One line for the run's log: what moves between ranks per round.
  virtual std::string describe() const = 0;

  // Starts a round: forgets the last round's updates and totals.
  void begin_round(const RoundContext& round);
  // A finite, transformed update of a party this rank hosts.
  void add(Update update);
  // A party that trained but is not aggregated (non-finite and skipped): its images count.
  void add_skipped(const Update& update);
  // Collective: every rank calls it once per round, after the round's agreement, and gets
  // the same aggregate (sums, weights and the totals of every rank).
  AggregateResult finish(comm::Communicator& comm);

 protected:
  virtual void on_begin_round(const RoundContext& round) = 0;
  virtual void accumulate(Update update) = 0;
  // Must fill every field of the result; `local` holds this rank's totals (sum them over
  // ranks, inside the aggregator's own collective or with sum_totals).
  virtual AggregateResult reduce(comm::Communicator& comm, const RoundTotals& local) = 0;
  // One float64 allreduce of the totals (for aggregators without a fused buffer).
  static RoundTotals sum_totals(comm::Communicator& comm, const RoundTotals& local);
  const RoundContext& round() const { return m_round; }

 private:
  RoundContext m_round;
  RoundTotals m_local;
};

// What the round calls once, in FederatedTrainer's constructor, to make its aggregator:
// `segment_sizes` values per Segment, buffers on `device`, collectives over `comm`.
using AggregatorFactory = std::function<std::unique_ptr<Aggregator>(
    std::vector<std::int64_t> segment_sizes, const torch::Device& device,
    comm::Communicator& comm)>;

// The names make_aggregator knows (for --aggregator's check).
std::vector<std::string> aggregator_names();

// `segment_sizes`: values per Segment (the plans' index counts); the buffers live on `device`.
// fedgan::Error for an unknown name.
std::unique_ptr<Aggregator> make_aggregator(const AggregatorConfig& config,
                                            std::vector<std::int64_t> segment_sizes,
                                            const torch::Device& device,
                                            comm::Communicator& comm);

}  // namespace fedgan::federated
