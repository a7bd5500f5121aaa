// The seams of a round: the aggregator factory, the FedAvg aggregator through the Aggregator
// interface, update and aggregate transforms and regularizers as the trainer calls them.
#include <catch2/catch.hpp>
#include <set>

#include "federated/toy_federation.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/data/party_data.hpp"
#include "fedgan/federated/aggregation/aggregator.hpp"
#include "fedgan/federated/round/federated_trainer.hpp"
#include "fedgan/federated/round/party_runner.hpp"
#include "fedgan/transfer/freeze_policy.hpp"

using namespace fedgan;
using namespace fedgan::federated;

namespace {

train::LocalTrainConfig pipeline_local() {
  train::LocalTrainConfig c;
  c.local_steps = 2;
  c.batch_size = 8;
  return c;
}

Update known_update(int party, double weight, float value, std::int64_t images) {
  Update u;
  u.party = party;
  u.weight = weight;
  u.samples = static_cast<std::int64_t>(weight);
  u.segments = {torch::full({3}, value), torch::full({1}, -value), torch::full({2}, 2 * value),
                torch::zeros({0})};
  u.d_loss = value;
  u.g_loss = 1;
  u.steps = 2;
  u.images = images;
  return u;
}

struct Calls {
  std::vector<int> updates;  // party ids, in call order
  int aggregates = 0;
  int parties_started = 0, before_steps = 0, after_steps = 0;
};

class RecordingTransform final : public UpdateTransform {
 public:
  RecordingTransform(Calls& calls, bool uniform) : m_calls(calls), m_uniform(uniform) {}
  std::string name() const override { return "recording"; }
  void apply(Update& u, const RoundContext& round) override {
    CHECK(std::binary_search(round.participants.begin(), round.participants.end(), u.party));
    CHECK(u.segments.size() == kSegments);
    m_calls.updates.push_back(u.party);
    if (m_uniform) u.weight = 1;
  }

 private:
  Calls& m_calls;
  bool m_uniform;
};

class RecordingAggregateHook final : public AggregateTransform {
 public:
  explicit RecordingAggregateHook(Calls& calls) : m_calls(calls) {}
  std::string name() const override { return "recording"; }
  void apply(AggregateResult& a, const RoundContext&) override {
    CHECK(a.sums.size() == kSegments);
    CHECK(a.denominator == a.total_weight);
    m_calls.aggregates += 1;
  }

 private:
  Calls& m_calls;
};

class RecordingRegularizer final : public train::Regularizer {
 public:
  explicit RecordingRegularizer(Calls& calls) : m_calls(calls) {}
  void begin_party(const train::PartyStart& s) override {
    CHECK(s.global != nullptr);
    m_calls.parties_started += 1;
  }
  void before_step(train::Net, const torch::Tensor& params, torch::Tensor& grad) override {
    CHECK(params.numel() == grad.numel());
    m_calls.before_steps += 1;
  }
  void after_step(train::Net, const torch::Tensor&) override { m_calls.after_steps += 1; }

 private:
  Calls& m_calls;
};

}  // namespace

TEST_CASE("the aggregator factory makes fedavg and refuses unknown names", "[federated]") {
  auto comm = comm::make_serial_communicator();
  const std::vector<std::int64_t> sizes = {3, 1, 2, 0};
  auto agg = make_aggregator(AggregatorConfig{}, sizes, torch::kCPU, *comm);
  CHECK(agg->name() == "fedavg");
  CHECK_THAT(agg->describe(), Catch::Contains("one fused allreduce"));
  CHECK_THROWS_WITH(parse_aggregation_rule("no-such-rule"),
                    Catch::Contains("--aggregator: unknown aggregator 'no-such-rule'") &&
                        Catch::Contains("fedavg"));
  CHECK(parse_aggregation_rule("multi-krum") == AggregationRule::MultiKrum);
  CHECK_THROWS_AS(make_aggregator(AggregatorConfig{}, {3, 1}, torch::kCPU, *comm), Error);
}

TEST_CASE("fedavg through the Aggregator interface: weighted mean and round totals",
          "[federated]") {
  auto comm = comm::make_serial_communicator();
  auto agg = make_aggregator(AggregatorConfig{}, {3, 1, 2, 0}, torch::kCPU, *comm);
  for (int round = 1; round <= 2; ++round) {  // a second round starts from nothing
    agg->begin_round({round, {0, 1, 2}, 3, 0});
    agg->add(known_update(0, 1, 1.0f, 10));
    agg->add(known_update(1, 3, 5.0f, 30));
    auto bad = known_update(2, 7, 0.0f, 4);
    bad.finite = false;
    agg->add_skipped(bad);
    CHECK_THROWS_AS(agg->add(bad), Error);  // a non-finite update never reaches a sum
    const auto a = agg->finish(*comm);
    CHECK(a.total_weight == 4);
    CHECK(a.denominator == 4);
    CHECK(a.totals.parties == 2);
    CHECK(a.totals.images == 44);  // the skipped party's images count too
    CHECK(a.totals.samples == 4);
    CHECK(a.totals.sample_steps == 8);
    CHECK(a.totals.d_loss == 6);
    CHECK(torch::equal(a.mean(kGParams), torch::full({3}, 4.0f)));  // (1 + 15) / 4
    CHECK(torch::equal(a.mean(kGBuffers), torch::full({1}, -4.0f)));
    CHECK(torch::equal(a.mean(kDParams), torch::full({2}, 8.0f)));
    CHECK(a.mean(kDBuffers).numel() == 0);
  }
}

TEST_CASE("transforms and regularizers see every party of every round", "[federated]") {
  auto comm = comm::make_serial_communicator();
  FederatedConfig fc;
  fc.seed = 9;
  fc.participation = 0.5;  // 2 of 4 parties per round
  Calls calls;
  FederatedTrainer t(*comm, testing::toy_model(), pipeline_local(), fc,
                     testing::toy_parties({16, 16, 16, 16}, 5, 40), 4);
  t.add_update_transform(std::make_unique<RecordingTransform>(calls, false));
  t.add_aggregate_transform(std::make_unique<RecordingAggregateHook>(calls));
  t.add_regularizer(std::make_shared<RecordingRegularizer>(calls));
  std::vector<int> expected;
  for (int round = 1; round <= 3; ++round) {
    const auto ids = sample_participants(4, 0.5, 9, round);
    expected.insert(expected.end(), ids.begin(), ids.end());
    const auto r = t.run_round(round);
    CHECK(r.parties == 2);
  }
  CHECK(calls.updates == expected);
  CHECK(calls.aggregates == 3);
  CHECK(calls.parties_started == 6);
  // Each party: 2 local steps, each one D and one G optimizer step.
  CHECK(calls.before_steps == 6 * 2 * 2);
  CHECK(calls.after_steps == 6 * 2 * 2);
}

TEST_CASE("an update transform's weights steer the mean (uniform = FedAvg on equal shards)",
          "[federated]") {
  auto comm = comm::make_serial_communicator();
  FederatedConfig fc;
  fc.seed = 4;
  Calls calls;
  auto run = [&](std::vector<std::int64_t> sizes, bool uniform) {
    FederatedTrainer t(*comm, testing::toy_model(), pipeline_local(), fc,
                       testing::toy_parties(sizes, 5, 40), static_cast<int>(sizes.size()));
    if (uniform) t.add_update_transform(std::make_unique<RecordingTransform>(calls, true));
    for (int round = 1; round <= 2; ++round) t.run_round(round);
    return t.global().g_flat().snapshot();
  };
  // Equal shards: n·Δ / Σn and 1·Δ / P are the same float64 arithmetic up to a power of two.
  CHECK(torch::equal(run({16, 16}, false), run({16, 16}, true)));
  // Unequal shards: uniform weights give another model than sample weights.
  CHECK_FALSE(torch::equal(run({16, 48}, false), run({16, 48}, true)));
}

TEST_CASE("a party keeps state across rounds only when a feature needs it", "[federated]") {
  const auto model = testing::toy_model();
  torch::manual_seed(5);
  models::Gan global(model, torch::kCPU);
  auto plans = std::make_shared<ModelPlans>();
  plans->g = transfer::make_plan(global.g_flat(), global.generator().block_prefixes(), {},
                                 "generator");
  plans->d = transfer::make_plan(global.d_flat(), global.discriminator().block_prefixes(), {},
                                 "discriminator");
  const auto parties = testing::toy_parties({8, 8, 8}, 11, 12);
  RoundContext round;
  round.round = 1;
  round.participants = {0, 1, 2};
  round.total_parties = 3;
  struct Case {
    OptimizerState optimizers;
    bool local_bn;
    std::size_t kept;
  };
  // Reset without local BN: nothing per party (each held a fresh Adam before the fix).
  for (const Case c : {Case{OptimizerState::Reset, false, 0}, Case{OptimizerState::Keep, false, 3},
                       Case{OptimizerState::Reset, true, 3}}) {
    PartyRunnerConfig config;
    config.optimizer_state = c.optimizers;
    config.local_bn = c.local_bn;
    PartyRunner runner(model, pipeline_local(), config, plans);
    runner.begin_round();
    for (const auto& p : parties) {
      const auto u = runner.run(p, global, round, [] { return false; });
      REQUIRE(u.has_value());
      CHECK(u->finite);
    }
    CHECK(runner.parties_with_state() == c.kept);
    CHECK(runner.has_state() == (c.kept > 0));
  }
}
