// Federated pieces that need no MPI: participation draws, server optimizers, aggregation.
#include <catch2/catch.hpp>

#include "fedgan/core/error.hpp"
#include "fedgan/federated/round/federated_trainer.hpp"
#include "fedgan/federated/aggregation/fused_aggregator.hpp"
#include "fedgan/federated/server/server_optimizer.hpp"

#include <set>

using namespace fedgan;

TEST_CASE("participation draws are seeded, sized and distinct", "[federated]") {
  auto a = federated::sample_participants(10, 0.3, 7, 4);
  CHECK(a.size() == 3);
  CHECK(a == federated::sample_participants(10, 0.3, 7, 4));
  CHECK(std::set<int>(a.begin(), a.end()).size() == 3);
  for (int id : a) CHECK((id >= 0 && id < 10));
  // Different rounds give different draws (over many rounds, more than one set appears).
  std::set<std::vector<int>> seen;
  for (int r = 1; r <= 20; ++r) seen.insert(federated::sample_participants(10, 0.3, 7, r));
  CHECK(seen.size() > 5);
  CHECK(federated::sample_participants(5, 1.0, 0, 1) == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(federated::sample_participants(5, 0.01, 0, 1).size() == 1);
  CHECK_THROWS_AS(federated::sample_participants(5, 0.0, 0, 1), Error);
}

TEST_CASE("fused aggregator forms the weighted mean", "[federated]") {
  auto comm = comm::make_serial_communicator();
  federated::FusedAggregator agg({3, 2}, 1);
  agg.add({torch::tensor({1.0f, 2.0f, 3.0f}), torch::tensor({1.0f, 1.0f})}, 1.0);
  agg.add({torch::tensor({4.0f, 5.0f, 6.0f}), torch::tensor({0.0f, 2.0f})}, 3.0);
  agg.stats()[0] += 5;
  agg.allreduce(*comm);
  CHECK(agg.total_weight() == 4.0);
  const auto mean = [&](std::size_t s) { return (agg.sum(s) / agg.total_weight()).to(torch::kFloat32); };
  CHECK(torch::allclose(mean(0), torch::tensor({13.0f / 4, 17.0f / 4, 21.0f / 4})));
  CHECK(torch::allclose(mean(1), torch::tensor({0.25f, 7.0f / 4})));
  CHECK(agg.stats()[0].item<double>() == 5.0);
  agg.reset();
  CHECK(agg.total_weight() == 0.0);
  CHECK(torch::count_nonzero(agg.sum(0)).item<std::int64_t>() == 0);
}

TEST_CASE("server optimizers: fedavg adds, fedavgm accumulates, fedadam normalises", "[federated]") {
  auto delta = torch::tensor({0.5f, -1.0f});
  federated::ServerOptimizerConfig c;
  auto avg = federated::make_server_optimizer(c);
  auto g = torch::zeros({2});
  avg->apply(g, delta);
  CHECK(torch::equal(g, delta));

  c.kind = federated::ServerOptimizerKind::FedAvgM;
  c.momentum = 0.5;
  auto m = federated::make_server_optimizer(c);
  g.zero_();
  m->apply(g, delta);
  m->apply(g, delta);  // v = 0.5·Δ + Δ, g = Δ + 1.5Δ
  CHECK(torch::allclose(g, delta * 2.5));
  auto state = m->state();
  REQUIRE(state.count("velocity"));
  auto m2 = federated::make_server_optimizer(c);
  m2->load_state(state);
  auto g2 = g.clone();
  m->apply(g, delta);
  m2->apply(g2, delta);
  CHECK(torch::equal(g, g2));

  c.kind = federated::ServerOptimizerKind::FedAdam;
  c.lr = 0.1;
  auto adam = federated::make_server_optimizer(c);
  g.zero_();
  adam->apply(g, delta);
  // First step: m = 0.1Δ, v = 0.01Δ², step = lr·m/(|0.1Δ| + τ) ≈ lr·sign(Δ).
  CHECK(g[0].item<float>() == Approx(0.1 * 0.05 / (0.05 + 1e-3)));
  CHECK(adam->name() == "fedadam");
  CHECK_THROWS_WITH(federated::parse_server_optimizer("sgd"),
                    Catch::Contains("--server-optimizer: unknown server optimizer 'sgd'"));
  CHECK(federated::parse_server_optimizer("fedyogi") == federated::ServerOptimizerKind::FedYogi);
}
