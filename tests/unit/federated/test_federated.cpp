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
  federated::FedAvgAggregator agg({3, 2}, torch::kCPU);
  auto update = [](int party, double weight, std::vector<torch::Tensor> segments) {
    federated::Update u;
    u.party = party;
    u.weight = weight;
    u.samples = static_cast<std::int64_t>(weight);
    u.images = 5;
    u.segments = std::move(segments);
    return u;
  };
  agg.begin_round({1, {0, 1}, 2, 0});
  agg.add(update(0, 1.0, {torch::tensor({1.0f, 2.0f, 3.0f}), torch::tensor({1.0f, 1.0f})}));
  agg.add(update(1, 3.0, {torch::tensor({4.0f, 5.0f, 6.0f}), torch::tensor({0.0f, 2.0f})}));
  // A segment of the wrong size, or a missing one, is refused before anything is summed.
  CHECK_THROWS_WITH(agg.add(update(2, 1.0, {torch::zeros({3}), torch::zeros({1})})),
                    Catch::Contains("segment 1 has the wrong size"));
  CHECK_THROWS_WITH(agg.add(update(2, 1.0, {torch::zeros({3})})),
                    Catch::Contains("wrong number of segments"));
  const auto a = agg.finish(*comm);
  CHECK(a.total_weight == 4.0);
  CHECK(a.totals.parties == 2);
  CHECK(a.totals.images == 10);
  CHECK(torch::allclose(a.mean(0), torch::tensor({13.0f / 4, 17.0f / 4, 21.0f / 4})));
  CHECK(torch::allclose(a.mean(1), torch::tensor({0.25f, 7.0f / 4})));
  // The next round starts from nothing.
  agg.begin_round({2, {0, 1}, 2, 0});
  const auto empty = agg.finish(*comm);
  CHECK(empty.total_weight == 0.0);
  CHECK(empty.totals.images == 0);
  CHECK(torch::count_nonzero(empty.sums[0]).item<std::int64_t>() == 0);
}

TEST_CASE("segment layout: flatten and split are inverse, sizes are checked", "[federated]") {
  const federated::SegmentLayout layout({2, 0, 3, 1});
  CHECK(layout.numel() == 6);
  CHECK(layout.segments() == 4);
  const std::vector<torch::Tensor> parts = {torch::tensor({1.0, 2.0}, torch::kFloat64),
                                            torch::zeros({0}),
                                            torch::tensor({{3.0f, 4.0f, 5.0f}}),  // 2-D
                                            torch::tensor({6.0f})};
  const auto flat = layout.flatten(parts);
  CHECK(flat.scalar_type() == torch::kFloat32);
  CHECK(flat.is_contiguous());
  CHECK(torch::equal(flat, torch::arange(1, 7, torch::kFloat32)));
  const auto views = layout.split(flat);
  REQUIRE(views.size() == 4);
  CHECK(torch::equal(views[0], torch::tensor({1.0f, 2.0f})));
  CHECK(views[1].numel() == 0);
  CHECK(torch::equal(views[2], torch::tensor({3.0f, 4.0f, 5.0f})));
  CHECK(torch::equal(views[3], torch::tensor({6.0f})));
  views[3].fill_(9);  // views, not copies
  CHECK(flat[5].item<float>() == 9);
  CHECK_THROWS_AS(layout.split(torch::zeros({5})), Error);
  CHECK_THROWS_WITH(layout.flatten({parts[0], parts[1], parts[2]}),
                    Catch::Contains("wrong number of segments"));
}

TEST_CASE("round totals: an aggregated update counts in full, a lost one only its training",
          "[federated]") {
  federated::Update u;
  u.d_loss = 0.5;
  u.g_loss = 1.5;
  u.samples = 10;
  u.steps = 3;
  u.images = 40;
  u.ada_sign_sum = 2;
  u.ada_count = 8;
  auto t = federated::RoundTotals::of(u);
  CHECK(t.parties == 1);
  CHECK(t.sample_steps == 30);
  const auto trained = t.training_only();
  CHECK(trained.images == 40);
  CHECK(trained.ada_sign_sum == 2);
  CHECK(trained.ada_count == 8);
  CHECK(trained.parties == 0);
  CHECK(trained.d_loss == 0);
  CHECK(trained.g_loss == 0);
  CHECK(trained.samples == 0);
  CHECK(trained.sample_steps == 0);
  t += trained;
  double slots[federated::RoundTotals::kSlots];
  t.to(slots);
  federated::RoundTotals back;
  back.from(slots);
  CHECK(back.images == 80);
  CHECK(back.parties == 1);
  CHECK(back.d_loss == 0.5);
  CHECK(back.ada_count == 16);
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
