// Aggregators and their factory (see include/fedgan/federated/aggregation/aggregator.hpp).
#include "fedgan/federated/aggregation/aggregator.hpp"

#include "fedgan/core/error.hpp"
#include "fedgan/federated/aggregation/fused_aggregator.hpp"
#include "fedgan/federated/aggregation/robust_aggregator.hpp"
#include "fedgan/federated/round/participation.hpp"

namespace fedgan::federated {

Aggregator::Aggregator(std::vector<std::int64_t> segment_sizes)
    : m_layout(std::move(segment_sizes)) {}

namespace {

const AggregatorChoice kAggregatorChoices[] = {
    {AggregationRule::FedAvg, "fedavg", "the sample-weighted mean, one fused allreduce",
     [](const AggregatorConfig&, std::vector<std::int64_t> sizes,
        const torch::Device& device) -> std::unique_ptr<Aggregator> {
       return std::make_unique<FedAvgAggregator>(std::move(sizes), device);
     }},
    {AggregationRule::Median, "median", "robust: the coordinate-wise median",
     make_robust_aggregator},
    {AggregationRule::TrimmedMean, "trimmed-mean",
     "robust: the coordinate-wise mean without the --trim-beta extremes", make_robust_aggregator},
    {AggregationRule::Krum, "krum",
     "robust: the update closest to its P - f - 2 nearest, Blanchard et al. 2017",
     make_robust_aggregator},
    {AggregationRule::MultiKrum, "multi-krum",
     "robust: the mean of the --krum-m updates with the best Krum scores", make_robust_aggregator},
    {AggregationRule::NormBound, "norm-bound",
     "robust: clip to the median norm, then the weighted mean", make_robust_aggregator},
};

}  // namespace

const ChoiceTable<AggregatorChoice>& aggregation_rules() {
  static const ChoiceTable<AggregatorChoice> table(kAggregatorChoices, "--aggregator",
                                                   "aggregator");
  return table;
}

AggregationRule parse_aggregation_rule(const std::string& name) {
  return aggregation_rules().parse(name).value;
}

std::string to_string(AggregationRule rule) { return aggregation_rules().name(rule); }

void Aggregator::set_coverage(std::vector<std::vector<torch::Tensor>>) {
  throw Error("--aggregator " + name() +
              ": cannot aggregate width sub-models (--width-ratios): its rule compares whole "
              "updates, and a sub-model's update holds only part of the coordinates; use "
              "--aggregator fedavg");
}

void Aggregator::begin_round(const RoundContext& round) {
  m_round = round;
  m_local = RoundTotals{};
  on_begin_round(round);
}

void Aggregator::add(Update update) {
  require(update.finite, "aggregator: a non-finite update of party " +
                             std::to_string(update.party) + " reached aggregation");
  m_layout.check(update.segments);
  const RoundTotals counts = RoundTotals::of(update);
  const Contribution fate = accumulate(std::move(update));
  m_local += fate == Contribution::Aggregated ? counts : counts.training_only();
}

void Aggregator::add_skipped(const Update& update) {
  // Non-finite: its losses and ADA's signal may be NaN; only the images it saw count.
  m_local.images += static_cast<double>(update.images);
}

AggregateResult Aggregator::finish(comm::Communicator& comm) { return reduce(comm, m_local); }

RoundTotals Aggregator::sum_totals(comm::Communicator& comm, const RoundTotals& local,
                                   std::initializer_list<double*> extra) {
  // [totals | extra...]: one buffer, one collective.
  std::vector<double> slots(RoundTotals::kSlots + extra.size());
  local.to(slots.data());
  std::size_t at = RoundTotals::kSlots;
  for (double* value : extra) slots[at++] = *value;
  comm.allreduce_sum(slots.data(), slots.size());
  at = RoundTotals::kSlots;
  for (double* value : extra) *value = slots[at++];
  RoundTotals out;
  out.from(slots.data());
  return out;
}

std::string aggregator_settings_problem(const AggregatorConfig& config, int parties,
                                        double participation) {
  const int drawn = static_cast<int>(sample_participants(parties, participation, 0, 1).size());
  if (config.rule == AggregationRule::TrimmedMean)
    return trimmed_mean_setup_problem(config.trim_beta, drawn, parties, participation);
  if (config.rule != AggregationRule::Krum && config.rule != AggregationRule::MultiKrum) return "";
  const int f = config.krum_f;
  if (drawn <= 2 * f + 2)
    return "--aggregator " + to_string(config.rule) + " --krum-f " + std::to_string(f) +
           " needs more than 2f + 2 = " + std::to_string(2 * f + 2) + " parties in a round, but " +
           std::to_string(drawn) + " of the " + std::to_string(parties) +
           " parties take part (lower --krum-f, or raise --participation or the parties)";
  if (config.rule == AggregationRule::MultiKrum && config.krum_m > drawn - f)
    return "--krum-m " + std::to_string(config.krum_m) + " is more than the " +
           std::to_string(drawn - f) + " updates Multi-Krum may average (" + std::to_string(drawn) +
           " parties in a round minus --krum-f " + std::to_string(f) + "); use at most " +
           std::to_string(drawn - f) + ", or 0 for that many";
  return "";
}

std::unique_ptr<Aggregator> make_aggregator(const AggregatorConfig& config,
                                            std::vector<std::int64_t> segment_sizes,
                                            const torch::Device& device,
                                            comm::Communicator& /*comm*/) {
  require(segment_sizes.size() == kSegments,
          "aggregator: expected " + std::to_string(kSegments) + " segment sizes");
  return aggregation_rules().of(config.rule).make(config, std::move(segment_sizes), device);
}

}  // namespace fedgan::federated
