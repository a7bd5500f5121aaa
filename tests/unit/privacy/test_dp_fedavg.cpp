// DP-FedAvg on the round's seams: the properties (clipping bounds a party, z = 0 and
// C = ∞ is FedAvg with uniform weights bit for bit, central and distributed noise have the same
// variance, the account survives a checkpoint, a z = 0 account survives a checkpoint file).
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "federated/toy_federation.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/data/party_data.hpp"
#include "fedgan/federated/aggregation/aggregator.hpp"
#include "fedgan/federated/round/federated_trainer.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/privacy/dp_fedavg.hpp"
#include "temp_dir.hpp"

using namespace fedgan;
using namespace fedgan::federated;

namespace {

const double kNoClip = std::numeric_limits<double>::infinity();

train::LocalTrainConfig dp_local() {
  train::LocalTrainConfig c;
  c.local_steps = 2;
  c.batch_size = 8;
  return c;
}

privacy::DpPlan dp_plan(double clip, double z, double q, const std::vector<std::int64_t>& sizes,
                        privacy::NoiseMode noise = privacy::NoiseMode::Central) {
  privacy::DpConfig c;
  c.enabled = true;
  c.clip = clip;
  c.noise_multiplier = z;
  c.noise = noise;
  return privacy::make_dp_plan(c, q, sizes);
}

// Sets every update's weight to 1: plain FedAvg with uniform weights.
class UniformWeights final : public UpdateTransform {
 public:
  std::string name() const override { return "uniform"; }
  void apply(Update& u, const RoundContext&) override { u.weight = 1; }
};

// Multiplies one party's update (a party gone wrong, or an attacker).
class Amplify final : public UpdateTransform {
 public:
  Amplify(int party, double factor) : m_party(party), m_factor(factor) {}
  std::string name() const override { return "amplify"; }
  void apply(Update& u, const RoundContext&) override {
    if (u.party == m_party)
      for (auto& s : u.segments) s.mul_(m_factor);
  }

 private:
  int m_party;
  double m_factor;
};

torch::Tensor whole_model(FederatedTrainer& t) {
  return torch::cat({t.global().g_flat().snapshot(), t.global().d_flat().snapshot()});
}

// Round t of a 20-party federation in which no party took part (zero sums over 4 values): the DP
// aggregate transform adds its noise, moves an adaptive clip and accounts the round.
void apply_round_without_parties(AggregateTransform& server, int t) {
  AggregateResult r;
  r.sums = {torch::zeros({4}, torch::kFloat64), torch::zeros({0}, torch::kFloat64),
            torch::zeros({0}, torch::kFloat64), torch::zeros({0}, torch::kFloat64)};
  server.apply(r, RoundContext{t, {}, 20, 1});
}

}  // namespace

TEST_CASE("DP with z = 0 and C = inf equals FedAvg with uniform weights, bit for bit", "[dp]") {
  auto comm = comm::make_serial_communicator();
  const std::vector<std::int64_t> sizes{16, 48, 24};  // unequal: n-weighting would differ
  FederatedConfig fc;
  fc.seed = 5;
  fc.poisson_sampling = true;  // q = 1: every party, as the plain run
  FederatedTrainer plain(*comm, testing::toy_model(), dp_local(), fc,
                         testing::toy_parties(sizes, 11, 70), 3);
  plain.add_update_transform(std::make_unique<UniformWeights>());
  FederatedTrainer dp(*comm, testing::toy_model(), dp_local(), fc,
                      testing::toy_parties(sizes, 11, 70), 3);
  privacy::DpFedAvg mech(*comm, dp_plan(kNoClip, 0, 1.0, sizes));
  dp.add_update_transform(mech.update_transform());
  dp.add_aggregate_transform(mech.aggregate_transform());
  for (int round = 1; round <= 2; ++round) {
    plain.run_round(round);
    dp.run_round(round);
  }
  CHECK(torch::equal(whole_model(plain), whole_model(dp)));
  CHECK(mech.rounds_accounted() == 2);
  CHECK(std::isinf(mech.spent().epsilon));  // no noise, no privacy: said, not hidden
}

TEST_CASE("clipping bounds a party: a 1000x update moves the model no more than norm C",
          "[dp]") {
  auto comm = comm::make_serial_communicator();
  const std::vector<std::int64_t> sizes{16, 16, 16, 16};
  const double clip = 1e-3;
  auto moved = [&](double factor) {
    FederatedConfig fc;
    fc.seed = 8;
    fc.poisson_sampling = true;
    FederatedTrainer t(*comm, testing::toy_model(), dp_local(), fc,
                       testing::toy_parties(sizes, 11, 70), 4);
    privacy::DpFedAvg mech(*comm, dp_plan(clip, 0, 1.0, sizes));
    t.add_update_transform(std::make_unique<Amplify>(2, factor));
    t.add_update_transform(mech.update_transform());
    t.add_aggregate_transform(mech.aggregate_transform());
    const auto before = whole_model(t).to(torch::kFloat64);
    t.run_round(1);
    return (whole_model(t).to(torch::kFloat64) - before).norm().item<double>();
  };
  const double normal = moved(1), huge = moved(1000);
  // FedAvg (server lr 1) moves the model by the mean of 4 clipped updates over m = 4: at most C.
  // The movement is measured on float32 weights (w + δ is rounded to float32: about 1e-9 per
  // value here, 2e-5·C over the model's 18k values), hence the 1e-3 relative slack.
  CHECK(normal <= clip * (1 + 1e-3));
  CHECK(huge <= clip * (1 + 1e-3));
  // The amplified party's clipped update has norm C, as its plain one (its norm is above C):
  // the two models differ by rounding only, not by a factor of 1000.
  CHECK(std::abs(huge - normal) < 1e-3 * clip);
  // Without clipping the same attack moves the model hundreds of times further (measured right
  // after the server step), so far that the round's model check stops it and puts it back.
  FederatedConfig fc;
  fc.seed = 8;
  torch::Tensor before;
  double unclipped = 0;
  fc.after_server_step = [&](models::Gan& g) {
    unclipped = (torch::cat({g.g_flat().snapshot(), g.d_flat().snapshot()}).to(torch::kFloat64) -
                 before)
                    .norm()
                    .item<double>();
  };
  FederatedTrainer t(*comm, testing::toy_model(), dp_local(), fc,
                     testing::toy_parties(sizes, 11, 70), 4);
  t.add_update_transform(std::make_unique<Amplify>(2, 1000));
  before = whole_model(t).to(torch::kFloat64);
  CHECK_THROWS_WITH(t.run_round(1), Catch::Contains("the global model is unusable"));
  CHECK(unclipped > 100 * clip);
  CHECK(torch::equal(whole_model(t).to(torch::kFloat64), before));
}

TEST_CASE("central and distributed noise have the same variance (fixed seed)", "[dp]") {
  auto comm = comm::make_serial_communicator();
  // 40 parties of zero updates of 5000 values: the aggregate is the noise alone.
  const int P = 40;
  const std::int64_t n = 5000;
  const std::vector<std::int64_t> sizes(P, 10);
  auto noise_of = [&](privacy::NoiseMode mode) {
    privacy::DpFedAvg mech(*comm, dp_plan(2.0, 1.5, 1.0, sizes, mode));
    auto party = mech.update_transform();
    auto server = mech.aggregate_transform();
    auto agg = make_aggregator(federated::AggregatorConfig{}, {n, 0, 0, 0}, torch::kCPU, *comm);
    RoundContext round{3, {}, P, 77};
    for (int k = 0; k < P; ++k) round.participants.push_back(k);
    agg->begin_round(round);
    for (int k = 0; k < P; ++k) {
      Update u;
      u.party = k;
      u.weight = 10;
      u.samples = 10;
      u.segments = {torch::zeros({n}), torch::zeros({0}), torch::zeros({0}), torch::zeros({0})};
      party->apply(u, round);
      CHECK(u.weight == 1);
      agg->add(std::move(u));
    }
    auto a = agg->finish(*comm);
    server->apply(a, round);
    CHECK(a.denominator == P);  // q·P with q = 1
    return a.sums[kGParams];
  };
  const auto central = noise_of(privacy::NoiseMode::Central);
  const auto distributed = noise_of(privacy::NoiseMode::Distributed);
  // Both should be N(0, (zC)²) = N(0, 9) per value. With 5000 values the sample variance's
  // relative standard error is sqrt(2/5000) = 2%: 5 standard errors below.
  const double vc = central.var().item<double>(), vd = distributed.var().item<double>();
  CHECK(std::abs(vc / 9 - 1) < 0.1);
  CHECK(std::abs(vd / 9 - 1) < 0.1);
  CHECK(std::abs(vc / vd - 1) < 0.15);
  CHECK(std::abs(central.mean().item<double>()) < 5 * 3 / std::sqrt(5000.0));
  CHECK(std::abs(distributed.mean().item<double>()) < 5 * 3 / std::sqrt(5000.0));
  CHECK_FALSE(torch::equal(central, distributed));  // different draws, same law
}

TEST_CASE("the account and the adaptive clip survive a checkpoint exactly", "[dp]") {
  auto comm = comm::make_serial_communicator();
  const std::vector<std::int64_t> sizes(20, 10);
  privacy::DpConfig c;
  c.enabled = true;
  c.clip = 1.0;
  c.noise_multiplier = 0.9;
  c.clip_quantile = 0.5;
  c.clip_count_stddev = 1.0;
  const auto plan = privacy::make_dp_plan(c, 0.5, sizes);
  privacy::DpFedAvg a(*comm, plan);
  auto server = a.aggregate_transform();
  for (int t = 1; t <= 3; ++t) {
    apply_round_without_parties(*server, t);
  }
  CHECK(a.rounds_accounted() == 3);
  CHECK(a.clip() != 1.0);  // the noised count moved it
  privacy::DpFedAvg b(*comm, plan);
  b.load_state(a.state());
  CHECK(b.clip() == a.clip());
  CHECK(b.rounds_accounted() == 3);
  CHECK(b.spent().epsilon == a.spent().epsilon);
  CHECK(b.spent_after(5).epsilon == a.spent_after(5).epsilon);
  CHECK_THROWS_WITH(b.load_state({}), Catch::Contains("/state/privacy/orders"));
}

TEST_CASE("a checkpoint file keeps the infinite account of a run without noise (z = 0)", "[dp]") {
  // `train --dp-clip C --dp-noise-multiplier 0` is allowed (clipping only, epsilon = inf), so its
  // checkpoints must read back for eval, sample and resume; they were refused as non-finite.
  testing::TempDir dir;
  auto comm = comm::make_serial_communicator();
  const std::vector<std::int64_t> sizes(20, 10);
  privacy::DpConfig c;
  c.enabled = true;
  c.clip = 1.0;
  c.noise_multiplier = 0;
  const auto plan = privacy::make_dp_plan(c, 0.5, sizes);
  privacy::DpFedAvg a(*comm, plan);
  auto server = a.aggregate_transform();
  apply_round_without_parties(*server, 1);
  REQUIRE(std::isinf(a.spent().epsilon));

  io::CheckpointData ck;
  ck.round = 1;
  const auto model = testing::toy_model();
  ck.architecture = model.to_string();
  const auto shapes = models::ModelRegistry::instance().shapes(model);
  for (const auto& [k, s] : shapes.generator) ck.generator[k] = torch::ones(s);
  for (const auto& [k, s] : shapes.discriminator) ck.discriminator[k] = torch::ones(s);
  for (const auto& [k, v] : a.state()) ck.state[k] = v;
  io::write_checkpoint(dir.file("z0.h5"), ck);
  const auto back = io::read_checkpoint(dir.file("z0.h5"));
  privacy::DpFedAvg b(*comm, plan);
  b.load_state(back.state);
  CHECK(b.rounds_accounted() == 1);
  CHECK(std::isinf(b.spent().epsilon));

  // Only +inf, and only in the account: NaN there, or inf in a model tensor, is still refused.
  ck.state["privacy/rdp"] = a.state().at("privacy/rdp").clone();
  ck.state["privacy/rdp"][3] = std::numeric_limits<double>::quiet_NaN();
  io::write_checkpoint(dir.file("nan.h5"), ck);
  CHECK_THROWS_WITH(io::read_checkpoint(dir.file("nan.h5")),
                    Catch::Contains("nan.h5: /state/privacy/rdp holds NaN or negative values"));
  ck.state = a.state();
  ck.generator.begin()->second[0] = std::numeric_limits<float>::infinity();
  io::write_checkpoint(dir.file("inf.h5"), ck);
  CHECK_THROWS_WITH(io::read_checkpoint(dir.file("inf.h5")), Catch::Contains("NaN/inf"));
}
