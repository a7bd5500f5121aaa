// Guards of the round (issue 20): a trimmed mean that would trim nothing is refused at setup and
// warned about in a round where skipped parties leave it trimming nothing; a server step that
// leaves the global model unusable is stopped, with the model of the round before put back.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "federated/toy_federation.hpp"
#include "fedgan/comm/communicator.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/federated/aggregation/aggregator.hpp"
#include "fedgan/federated/aggregation/robust.hpp"
#include "fedgan/federated/aggregation/robust_rules.hpp"
#include "fedgan/federated/attacks/attack.hpp"
#include "fedgan/federated/round/federated_trainer.hpp"
#include "fedgan/federated/round/model_guard.hpp"

using namespace fedgan;
using namespace fedgan::federated;

TEST_CASE("a trimmed mean that trims nothing is refused at setup with the numbers", "[robust]") {
  AggregatorConfig tm;
  tm.rule = AggregationRule::TrimmedMean;  // --trim-beta 0.1 by default
  // 8 parties, all in every round: floor(0.8) = 0.
  CHECK_THAT(aggregator_settings_problem(tm, 8, 1.0),
             Catch::Contains("--trim-beta 0.1 would trim floor(beta*m) = floor(0.1*8) = 0 "
                             "updates at each end, m = 8 parties taking part in a round (of 8, "
                             "--participation 1)") &&
                 Catch::Contains("protects against no attacker") &&
                 Catch::Contains("1/m = 1/8, i.e. --trim-beta 0.125") &&
                 Catch::Contains("--aggregator median"));
  CHECK(aggregator_settings_problem(tm, 10, 1.0).empty());  // floor(0.1*10) = 1
  // m is the parties drawn per round: 5 of 10 at --participation 0.5.
  CHECK_THAT(aggregator_settings_problem(tm, 10, 0.5),
             Catch::Contains("floor(0.1*5) = 0") && Catch::Contains("m = 5 parties") &&
                 Catch::Contains("--trim-beta 0.2"));
  tm.trim_beta = 0.125;
  CHECK(aggregator_settings_problem(tm, 8, 1.0).empty());
  tm.trim_beta = 0;  // no trimming at all: the same refusal
  CHECK_THAT(aggregator_settings_problem(tm, 8, 1.0), Catch::Contains("floor(0*8) = 0"));
  // Two parties: no beta below 0.5 trims one.
  tm.trim_beta = 0.4;
  CHECK_THAT(aggregator_settings_problem(tm, 2, 1.0),
             Catch::Contains("with m = 2 no --trim-beta below 0.5 trims one per side") &&
                 Catch::Contains("--aggregator median, or more parties per round"));
  // The suggested beta always trims one (1/m rounded up), even where 1/m is no short decimal.
  CHECK_THAT(trimmed_mean_setup_problem(0.1, 7, 7, 1.0), Catch::Contains("--trim-beta 0.1429"));
  CHECK_THAT(trimmed_mean_setup_problem(0.1, 3, 3, 1.0), Catch::Contains("--trim-beta 0.3334"));
  CHECK(trimmed_count(0.1429, 7) == 1);
  CHECK(trimmed_count(0.3334, 3) == 1);
  for (int m = 3; m <= 200; ++m) {
    const double suggested = std::ceil(1e4 / m) / 1e4;
    CHECK(trimmed_count(suggested, m) == 1);
    CHECK(trimmed_mean_setup_problem(suggested, m, m, 1.0).empty());
  }
  // Other rules are not concerned.
  AggregatorConfig median;
  median.rule = AggregationRule::Median;
  median.trim_beta = 0;
  CHECK(aggregator_settings_problem(median, 8, 1.0).empty());
}

TEST_CASE("a round whose skipped parties leave the trimmed mean trimming nothing warns",
          "[robust]") {
  // 7 of 8 updates arrived: floor(0.125*7) = 0.
  CHECK_THAT(trimmed_mean_round_warning(0.125, 7, 8, 3),
             Catch::Contains("round 3: --aggregator trimmed-mean --trim-beta 0.125 trimmed "
                             "floor(beta*m) = floor(0.125*7) = 0 updates at each end: only m = 7 "
                             "of the 8 parties drawn sent an update") &&
                 Catch::Contains("1/m = 1/7, i.e. --trim-beta 0.1429"));
  CHECK(trimmed_mean_round_warning(0.125, 8, 8, 3).empty());
  CHECK(trimmed_mean_round_warning(0.25, 7, 8, 3).empty());
  CHECK(trimmed_mean_round_warning(0.125, 0, 8, 3).empty());  // nobody: nothing aggregated
}

namespace {

train::LocalTrainConfig guard_local() {
  train::LocalTrainConfig c;
  c.local_steps = 2;
  c.batch_size = 8;
  return c;
}

// Makes the round's aggregate NaN (a stand-in for any aggregate that breaks the model).
class PoisonAggregate final : public AggregateTransform {
 public:
  std::string name() const override { return "poison"; }
  void apply(AggregateResult& a, const RoundContext&) override {
    a.sums[kGParams].fill_(std::numeric_limits<double>::quiet_NaN());
  }
};

}  // namespace

TEST_CASE("the model check passes a sound model and changes nothing", "[federated]") {
  torch::manual_seed(3);
  models::Gan gan(testing::toy_model(), torch::kCPU);
  const auto g = gan.g_flat().snapshot(), d = gan.d_flat().snapshot();
  torch::manual_seed(11);
  const auto health = inspect_model(gan);
  const auto after = torch::rand({4});
  torch::manual_seed(11);
  CHECK(torch::equal(after, torch::rand({4})));  // no draw from torch's generator
  CHECK(health.ok());
  CHECK(health.describe().empty());
  CHECK(health.probed);
  CHECK(health.g_values == gan.g_flat().numel());
  CHECK(health.probe_inputs == 8);
  CHECK(health.g_probe_values == 8 * 28 * 28);
  CHECK(health.d_probe_values == 8);
  CHECK(health.g_max_abs > 0);
  CHECK(torch::equal(gan.g_flat().flat(), g));  // BatchNorm statistics untouched (eval mode)
  CHECK(torch::equal(gan.d_flat().flat(), d));
  CHECK(gan.generator().is_training());
  CHECK(gan.discriminator().is_training());
}

TEST_CASE("the model check finds NaN/inf values, and finite values with NaN/inf outputs",
          "[federated]") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  models::Gan gan(testing::toy_model(), torch::kCPU);
  const auto g = gan.g_flat().snapshot(), d = gan.d_flat().snapshot();
  gan.g_flat().flat()[0] = std::numeric_limits<float>::quiet_NaN();
  gan.d_flat().flat()[1] = std::numeric_limits<float>::infinity();
  auto h = inspect_model(gan);
  CHECK_FALSE(h.ok());
  CHECK_FALSE(h.probed);
  CHECK(h.g_nonfinite == 1);
  CHECK(h.d_nonfinite == 1);
  CHECK_THAT(h.describe(), Catch::Contains("G holds 1 NaN/inf of its " +
                                           std::to_string(gan.g_flat().numel()) + " values") &&
                               Catch::Contains("D holds 1 NaN/inf"));
  // Finite but huge (what --attack scale:1e30 makes of FedAvg's mean): the probe overflows.
  gan.g_flat().flat().copy_(g * 1e25f);
  gan.d_flat().flat().copy_(d);
  h = inspect_model(gan);
  CHECK_FALSE(h.ok());
  CHECK(h.probed);
  CHECK(h.g_nonfinite == 0);
  CHECK(h.g_probe_nonfinite > 0);
  CHECK(h.d_probe_nonfinite == 0);
  CHECK_THAT(h.describe(), Catch::Contains("its values are finite (largest |value| ") &&
                               Catch::Contains("G's images of 8 fixed latents hold") &&
                               Catch::Contains("eval mode"));
  gan.g_flat().flat().copy_(g);
  gan.d_flat().flat().copy_(d * 1e25f);
  h = inspect_model(gan);
  CHECK(h.g_probe_nonfinite == 0);
  CHECK_THAT(h.describe(), Catch::Contains("D's logits of 8 fixed images hold"));
}

TEST_CASE("the unusable-model message names the round, the attack and the numbers",
          "[federated]") {
  ModelHealth h;
  h.g_values = 100;
  h.g_nonfinite = 7;
  RoundSuspects s;
  s.round = 4;
  s.aggregator = "fedavg";
  s.parties = 8;
  s.denominator = 4321;
  s.g_mean_max_abs = 1.5e25;
  s.d_mean_max_abs = 2e-3;
  s.attack = "scale:1e+30 by parties 0";
  s.server_optimizer = "fedadam";
  s.server_lr = 0.5;
  s.lr_g = 2e-4;
  s.lr_d = 1e-3;
  const auto m = unusable_model_message(h, s);
  CHECK_THAT(m, Catch::StartsWith("round 4: the global model is unusable after the server step: "
                                  "G holds 7 NaN/inf of its 100 values. The model of round 3 was "
                                  "put back and nothing of round 4 is written"));
  CHECK_THAT(m, Catch::Contains("largest |mean update| of 1.5e+25 in G and 0.002 in D (sums / "
                                "denominator 4321)") &&
                    Catch::Contains("--attack scale:1e+30 by parties 0 is active") &&
                    Catch::Contains("--server-optimizer fedadam, --server-lr 0.5") &&
                    Catch::Contains("--lr-g 0.0002, --lr-d 0.001"));
  s.attack.clear();
  CHECK_THAT(unusable_model_message(h, s), Catch::Contains("no --attack is active"));
}

TEST_CASE("a server step that leaves the model unusable stops the round and puts it back",
          "[federated]") {
  auto comm = comm::make_serial_communicator();
  auto make = [&](const FederatedConfig& fc) {
    return std::make_unique<FederatedTrainer>(*comm, testing::toy_model(), guard_local(), fc,
                                              testing::toy_parties({16, 24, 16}, 5, 40), 3);
  };
  FederatedConfig fc;
  fc.seed = 2;
  fc.attack = parse_attack("scale:1e30", "0");
  auto t = make(fc);
  const auto g = t->global().g_flat().snapshot(), d = t->global().d_flat().snapshot();
  try {
    t->run_round(1);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.collective());
    CHECK_THAT(e.what(), Catch::StartsWith("round 1: the global model is unusable after the "
                                           "server step: its values are finite") &&
                             Catch::Contains("--aggregator fedavg, 3 parties") &&
                             Catch::Contains("--attack scale:1e+30 by parties 0 is active") &&
                             Catch::Contains("--server-optimizer fedavg, --server-lr 1") &&
                             Catch::Contains("--lr-g 0.0002, --lr-d 0.0002"));
  }
  CHECK(torch::equal(t->global().g_flat().flat(), g));
  CHECK(torch::equal(t->global().d_flat().flat(), d));

  // NaN in the aggregate, no attack: the values themselves are NaN.
  FederatedConfig plain;
  plain.seed = 2;
  int hooks = 0;
  plain.after_server_step = [&](models::Gan&) { ++hooks; };
  auto u = make(plain);
  u->run_round(1);  // a sound round passes, and the post-step hook ran once
  CHECK(hooks == 1);
  const auto g1 = u->global().g_flat().snapshot();
  u->add_aggregate_transform(std::make_unique<PoisonAggregate>());
  CHECK_THROWS_WITH(u->run_round(2), Catch::StartsWith("round 2: the global model is unusable "
                                                       "after the server step: G holds ") &&
                                         Catch::Contains("no --attack is active"));
  CHECK(torch::equal(u->global().g_flat().flat(), g1));
}
