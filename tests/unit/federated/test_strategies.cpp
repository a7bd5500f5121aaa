// Client and server strategies: FedProx, FedNova, SCAFFOLD, FedYogi, FedAdagrad, and the
// equivalences the algebra promises (each equals FedAvg, or another, bit for bit in its
// degenerate setting, and differs outside it).
#include <catch2/catch.hpp>

#include "federated/toy_federation.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/data/party_data.hpp"
#include "fedgan/federated/strategies/client_strategy.hpp"
#include "fedgan/federated/round/federated_trainer.hpp"
#include "fedgan/federated/server/server_optimizer.hpp"

using namespace fedgan;
using namespace fedgan::federated;

namespace {

train::LocalTrainConfig steps_config(int steps) {
  train::LocalTrainConfig c;
  c.local_steps = steps;
  c.batch_size = 8;
  return c;
}

train::LocalTrainConfig epochs_config() {
  train::LocalTrainConfig c;
  c.local_epochs = 1;
  c.batch_size = 8;
  return c;
}

struct ModelValues {
  torch::Tensor g, d;
};

ModelValues models_of(FederatedTrainer& t) {
  return {t.global().g_flat().snapshot(), t.global().d_flat().snapshot()};
}

bool same_models(const ModelValues& a, const ModelValues& b) {
  return torch::equal(a.g, b.g) && torch::equal(a.d, b.d);
}

// `rounds` rounds of a serial run; `setup` may add strategies to the trainer.
template <class Setup>
ModelValues run_rounds(FederatedConfig fc, const train::LocalTrainConfig& lc,
             const std::vector<std::int64_t>& sizes, int rounds, Setup setup) {
  auto comm = comm::make_serial_communicator();
  FederatedTrainer t(*comm, testing::toy_model(), lc, fc, testing::toy_parties(sizes, 70, 90),
                     static_cast<int>(sizes.size()));
  setup(t);
  for (int r = 1; r <= rounds; ++r) t.run_round(r);
  return models_of(t);
}

ModelValues run_rounds(FederatedConfig fc, const train::LocalTrainConfig& lc,
             const std::vector<std::int64_t>& sizes, int rounds) {
  return run_rounds(fc, lc, sizes, rounds, [](FederatedTrainer&) {});
}

FederatedConfig base_config() {
  FederatedConfig fc;
  fc.seed = 11;
  return fc;
}

}  // namespace

TEST_CASE("FedProx with mu = 0 equals FedAvg bit for bit; mu > 0 differs", "[federated][strategy]") {
  const auto fc = base_config();
  const std::vector<std::int64_t> sizes = {16, 24, 40};
  const auto fedavg = run_rounds(fc, steps_config(3), sizes, 2);
  // The proximal gradient is computed and added (μ·(w − w_global) = 0 exactly), not skipped.
  const auto prox0 = run_rounds(fc, steps_config(3), sizes, 2, [](FederatedTrainer& t) {
    t.add_regularizer(std::make_shared<FedProxRegularizer>(0.0));
  });
  CHECK(same_models(fedavg, prox0));
  auto prox_fc = fc;
  prox_fc.client.prox_mu = 1.0;  // through the config, as --prox-mu sets it
  const auto prox = run_rounds(prox_fc, steps_config(3), sizes, 2);
  CHECK_FALSE(same_models(fedavg, prox));
  CHECK_THROWS_AS(FedProxRegularizer(-1), Error);
}

TEST_CASE("FedProx pulls the local model towards the global one", "[federated][strategy]") {
  // The proximal term shrinks every party's distance from the global model: with a strong μ the
  // global model moves less in a round than under FedAvg.
  const auto fc = base_config();
  const std::vector<std::int64_t> sizes = {32, 32};
  const auto start = run_rounds(fc, steps_config(8), sizes, 0);
  auto prox_fc = fc;
  prox_fc.client.prox_mu = 1000.0;
  const auto fedavg = run_rounds(fc, steps_config(8), sizes, 1);
  const auto prox = run_rounds(prox_fc, steps_config(8), sizes, 1);
  const double moved_avg = (fedavg.g - start.g).norm().item<double>();
  const double moved_prox = (prox.g - start.g).norm().item<double>();
  CHECK(moved_prox < moved_avg);
}

TEST_CASE("FedNova's factor is tau_eff / tau_k over the participants", "[federated][strategy]") {
  const std::vector<std::int64_t> n = {16, 48, 8}, tau = {2, 6, 1};
  RoundContext round;
  round.participants = {0, 1};
  round.party_samples = &n;
  round.party_steps = &tau;
  // tau_eff = (16·2 + 48·6) / 64 = 5.
  CHECK(FedNovaTransform::factor(0, round) == 2.5);
  CHECK(FedNovaTransform::factor(1, round) == 5.0 / 6.0);
  round.participants = {0, 1, 2};  // tau_eff = (32 + 288 + 8) / 72
  CHECK(FedNovaTransform::factor(2, round) == Approx(328.0 / 72.0));
  Update u;
  u.party = 1;
  u.steps = 5;  // not what was planned: refused rather than normalised wrongly
  u.segments = {torch::ones({2}), torch::ones({1}), torch::ones({2}), torch::ones({0})};
  FedNovaTransform t;
  CHECK_THROWS_WITH(t.apply(u, round), Catch::Contains("ran 5 local steps, planned 6"));
  u.steps = 6;
  t.apply(u, round);
  CHECK(u.segments[kGParams][0].item<float>() == static_cast<float>(328.0 / 72.0 / 6.0));
  CHECK(u.segments[kGBuffers][0].item<float>() == 1.0f);  // buffers are averaged as FedAvg
}

TEST_CASE("FedNova with equal steps equals FedAvg bit for bit; unequal steps differ",
          "[federated][strategy]") {
  auto nova = base_config();
  nova.client.strategy = ClientStrategy::FedNova;
  // Equal steps (--local-steps) over unequal shards: the factor is exactly 1.
  const std::vector<std::int64_t> uneven = {16, 24, 56};
  CHECK(same_models(run_rounds(base_config(), steps_config(3), uneven, 2),
             run_rounds(nova, steps_config(3), uneven, 2)));
  // One local epoch over unequal shards: 2, 3 and 7 steps; FedNova rescales.
  CHECK_FALSE(same_models(run_rounds(base_config(), epochs_config(), uneven, 2),
                   run_rounds(nova, epochs_config(), uneven, 2)));
}

TEST_CASE("SCAFFOLD round 1 with zero variates equals FedAvg bit for bit, then corrects",
          "[federated][strategy]") {
  auto sc = base_config();
  sc.client.strategy = ClientStrategy::Scaffold;
  const std::vector<std::int64_t> sizes = {16, 24, 40};
  CHECK(same_models(run_rounds(base_config(), steps_config(3), sizes, 1), run_rounds(sc, steps_config(3), sizes, 1)));
  CHECK_FALSE(
      same_models(run_rounds(base_config(), steps_config(3), sizes, 2), run_rounds(sc, steps_config(3), sizes, 2)));
  // After round 1 the server variate is the mean drift, non-zero.
  auto comm = comm::make_serial_communicator();
  FederatedTrainer t(*comm, testing::toy_model(), steps_config(3), sc,
                     testing::toy_parties(sizes, 70, 90), 3);
  t.run_round(1);
  const auto state = t.server_state();
  REQUIRE(state.count("scaffold/c_g"));
  CHECK(state.at("scaffold/c_g").abs().sum().item<double>() > 0);
  CHECK(t.party_state_tensors().count("party/2/scaffold_c_d"));
}

TEST_CASE("SCAFFOLD resumes exactly from its saved variates", "[federated][strategy]") {
  auto sc = base_config();
  sc.client.strategy = ClientStrategy::Scaffold;
  sc.participation = 0.6;  // 2 of 3: variates of absent parties must survive too
  const std::vector<std::int64_t> sizes = {16, 24, 40};
  auto comm = comm::make_serial_communicator();
  FederatedTrainer straight(*comm, testing::toy_model(), steps_config(2), sc,
                            testing::toy_parties(sizes, 70, 90), 3);
  for (int r = 1; r <= 4; ++r) straight.run_round(r);

  FederatedTrainer first(*comm, testing::toy_model(), steps_config(2), sc,
                         testing::toy_parties(sizes, 70, 90), 3);
  for (int r = 1; r <= 2; ++r) first.run_round(r);
  const auto g = first.global().g_flat().snapshot(), d = first.global().d_flat().snapshot();
  auto server = first.server_state();
  auto party = first.party_state_tensors();
  for (auto* m : {&server, &party})
    for (auto& [k, v] : *m) v = v.clone();  // as a checkpoint holds them
  FederatedTrainer resumed(*comm, testing::toy_model(), steps_config(2), sc,
                           testing::toy_parties(sizes, 70, 90), 3);
  resumed.global().g_flat().restore(g);
  resumed.global().d_flat().restore(d);
  resumed.load_server_state(server);
  resumed.load_party_state_tensors(party);
  for (int r = 3; r <= 4; ++r) resumed.run_round(r);
  CHECK(same_models(models_of(straight), models_of(resumed)));
}

TEST_CASE("SCAFFOLD: an abandoned round leaves the variates as they were", "[federated][strategy]") {
  auto sc = base_config();
  sc.client.strategy = ClientStrategy::Scaffold;
  const std::vector<std::int64_t> sizes = {16, 24};
  auto comm = comm::make_serial_communicator();
  FederatedTrainer t(*comm, testing::toy_model(), steps_config(2), sc,
                     testing::toy_parties(sizes, 70, 90), 2);
  t.run_round(1);
  const auto before = t.server_state().at("scaffold/c_g").clone();
  const auto party_before = t.party_state_tensors().at("party/0/scaffold_c_g").clone();
  int asked = 0;
  // Party 0 trains, then the stop arrives before party 1.
  const auto r = t.run_round(2, [&] { return ++asked > 3; });
  REQUIRE(r.interrupted);
  CHECK(torch::equal(before, t.server_state().at("scaffold/c_g")));
  CHECK(torch::equal(party_before, t.party_state_tensors().at("party/0/scaffold_c_g")));
}

TEST_CASE("server optimizers in their degenerate settings", "[federated][strategy]") {
  const auto d1 = torch::tensor({0.5f, -1.0f, 0.0f, 3e-3f});
  const auto d2 = torch::tensor({-0.25f, 2.0f, 1e-4f, 0.0f});
  auto run = [&](ServerOptimizerConfig c, int steps) {
    auto opt = make_server_optimizer(c);
    auto g = torch::full({4}, 0.1f);
    opt->apply(g, d1);
    if (steps > 1) opt->apply(g, d2);
    return g;
  };
  ServerOptimizerConfig avg;
  ServerOptimizerConfig avgm;
  avgm.kind = ServerOptimizerKind::FedAvgM;
  avgm.momentum = 0;
  CHECK(torch::equal(run(avg, 2), run(avgm, 2)));  // FedAvgM without momentum is FedAvg
  ServerOptimizerConfig adam, yogi, adagrad;
  adam.kind = ServerOptimizerKind::FedAdam;
  yogi.kind = ServerOptimizerKind::FedYogi;
  adagrad.kind = ServerOptimizerKind::FedAdagrad;
  adam.lr = yogi.lr = adagrad.lr = 0.05;
  // From v = 0, Yogi's first second-moment update is Adam's: v = (1 − β2)Δ².
  CHECK(torch::equal(run(adam, 1), run(yogi, 1)));
  CHECK_FALSE(torch::equal(run(adam, 2), run(yogi, 2)));
  // Adagrad's v = Σ Δ² is Adam's with β2 = 0 in the first round.
  auto adam0 = adam;
  adam0.beta2 = 0;
  CHECK(torch::equal(run(adam0, 1), run(adagrad, 1)));
  CHECK_FALSE(torch::equal(run(adam0, 2), run(adagrad, 2)));
  // Adagrad by hand for one element after two rounds (β1 = 0.9, τ = 1e-3).
  const double m2 = 0.9 * (0.1 * 0.5) + 0.1 * -0.25, v2 = 0.25 + 0.0625;
  CHECK(run(adagrad, 2)[0].item<float>() ==
        Approx(0.1 + 0.05 * (0.1 * 0.5) / (0.5 + 1e-3) + 0.05 * m2 / (std::sqrt(v2) + 1e-3)));
  // Yogi by hand, element 1 (Δ = −1 then 2; β2 = 0.99): v1 = 0.01, v2 = v1 + 0.01·4·sign(4 − v1).
  const double yv2 = 0.01 + 0.01 * 4, ym1 = 0.1 * -1, ym2 = 0.9 * ym1 + 0.1 * 2;
  CHECK(run(yogi, 2)[1].item<float>() ==
        Approx(0.1 + 0.05 * ym1 / (0.1 + 1e-3) + 0.05 * ym2 / (std::sqrt(yv2) + 1e-3)));
  // The server learning rate scales FedAvg's step.
  avg.lr = 0.5;
  CHECK(run(avg, 1)[1].item<float>() == Approx(0.1 - 0.5));
  // Checkpointed state restores each.
  for (auto* c : {&yogi, &adagrad}) {
    auto a = make_server_optimizer(*c), b = make_server_optimizer(*c);
    auto ga = torch::zeros({4}), gb = torch::zeros({4});
    a->apply(ga, d1);
    b->load_state(a->state());
    gb.copy_(ga);
    a->apply(ga, d2);
    b->apply(gb, d2);
    CHECK(torch::equal(ga, gb));
  }
}
