// Aggregator: turns the round's updates into one aggregate that every rank holds. The run hands
// the round a factory (FederatedConfig::aggregator_factory); make_aggregator builds the rules
// named by --aggregator, and privacy::make_secure_fedavg_aggregator the one of --secure-agg.
// `fedavg` streams each update into one float64 buffer (FedAvgAggregator, fused_aggregator.hpp) and
// sums it with a single allreduce; a rule that needs the individual updates (median, Krum) keeps
// this rank's updates in accumulate() and runs its own collectives in reduce(). How to add one:
// docs/DESIGN.md, "Extending a round".
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/core/choice.hpp"
#include "fedgan/federated/aggregation/aggregation_rule.hpp"
#include "fedgan/federated/round/update.hpp"

namespace fedgan::federated {

// Why these aggregation settings cannot work with `parties` parties of which ⌈participation·P⌉
// take part in a round ("" when they can): Krum's f against the participants, Multi-Krum's m,
// a trimmed mean that would trim nothing (⌊β·m⌋ = 0).
std::string aggregator_settings_problem(const AggregatorConfig& config, int parties,
                                        double participation);

// The base class owns what every aggregator shares: the segments' layout (SegmentLayout: the
// flat offsets, flattening and splitting) and the round's totals. A subclass only aggregates
// values: it streams or keeps each update (accumulate), says whether the update reaches the
// aggregate, and forms the aggregate collectively (reduce), where it is handed the totals of
// exactly the updates that reached it.
class Aggregator {
 public:
  virtual ~Aggregator() = default;
  Aggregator(const Aggregator&) = delete;
  Aggregator& operator=(const Aggregator&) = delete;
  virtual std::string name() const = 0;
  // One line for the run's log: what moves between ranks per round.
  virtual std::string describe() const = 0;

  // Starts a round: forgets the last round's updates and totals.
  void begin_round(const RoundContext& round);
  // A finite, transformed update of a party this rank hosts (its segments must match layout()).
  void add(Update update);
  // A party that trained but is not aggregated (non-finite and skipped): its images count.
  void add_skipped(const Update& update);
  // Collective: every rank calls it once per round, after the round's agreement, and gets
  // the same aggregate (sums, weights and the totals of every rank).
  AggregateResult finish(comm::Communicator& comm);

  const SegmentLayout& layout() const { return m_layout; }

  // Width levels (federated/round/width_levels.hpp), set once before the first round: per level,
  // per Segment, float64 0/1, the aggregated coordinates that a party of that level holds. The
  // aggregate then averages each coordinate over the updates that hold it (per-coordinate
  // weights in AggregateResult::coordinate_weight). An aggregator that cannot refuses with why
  // (fedgan::Error naming --aggregator); FedAvg can.
  virtual void set_coverage(std::vector<std::vector<torch::Tensor>> coverage);

 protected:
  // `segment_sizes`: values per Segment.
  explicit Aggregator(std::vector<std::int64_t> segment_sizes);

  // What became of an update that accumulate() took.
  enum class Contribution {
    Aggregated,  // it is in the aggregate: every field of RoundTotals::of(update) counts
    Lost,        // it never reaches the aggregate (secure aggregation: the party failed after
                 // masking): only RoundTotals::training_only() counts
  };
  virtual void on_begin_round(const RoundContext& round) = 0;
  // A finite update whose segments match layout().
  virtual Contribution accumulate(Update update) = 0;
  // Must fill every field of the result. `local`: this rank's totals, already those of the
  // updates that reached the aggregate (plus the training counts of the others); sum them over
  // ranks inside the aggregator's own collective or with sum_totals.
  virtual AggregateResult reduce(comm::Communicator& comm, const RoundTotals& local) = 0;
  // One float64 allreduce of `local` and, in the same collective, of the aggregator's own values
  // `extra` (each summed over ranks in place): e.g. a weight and a count that travel with the
  // totals.
  static RoundTotals sum_totals(comm::Communicator& comm, const RoundTotals& local,
                                std::initializer_list<double*> extra = {});
  const RoundContext& round() const { return m_round; }

 private:
  SegmentLayout m_layout;
  RoundContext m_round;
  RoundTotals m_local;
};

// What the round calls once, in FederatedTrainer's constructor, to make its aggregator:
// `segment_sizes` values per Segment, buffers on `device`, collectives over `comm`.
using AggregatorFactory = std::function<std::unique_ptr<Aggregator>(
    std::vector<std::int64_t> segment_sizes, const torch::Device& device,
    comm::Communicator& comm)>;

// --aggregator: each rule's name, help and factory (`segment_sizes` values per Segment, buffers
// on `device`).
struct AggregatorChoice {
  AggregationRule value;
  const char* name;
  const char* help;
  std::unique_ptr<Aggregator> (*make)(const AggregatorConfig& config,
                                      std::vector<std::int64_t> segment_sizes,
                                      const torch::Device& device);
};
const ChoiceTable<AggregatorChoice>& aggregation_rules();
// fedgan::Error naming --aggregator and the rules for an unknown name.
AggregationRule parse_aggregation_rule(const std::string& name);

// The aggregator of config.rule. `segment_sizes`: values per Segment (the plans' index counts);
// the buffers live on `device`.
std::unique_ptr<Aggregator> make_aggregator(const AggregatorConfig& config,
                                            std::vector<std::int64_t> segment_sizes,
                                            const torch::Device& device,
                                            comm::Communicator& comm);

}  // namespace fedgan::federated
