// Robust aggregation across ranks: known updates against hand-computed results with several
// parties per rank and uneven coordinate shards (P = 5, N = 7 at 1, 2 and 4 ranks), the sharded
// median against a serial one bit for bit, Krum's choice, agreed errors, and attacks that move
// FedAvg but not the robust rules on a fixed toy problem.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "fedgan/core/error.hpp"
#include "fedgan/federated/attacks/attack.hpp"
#include "fedgan/federated/aggregation/coordinate_shards.hpp"
#include "fedgan/federated/aggregation/robust.hpp"
#include "mpi_fixture.hpp"

using namespace fedgan;
using namespace fedgan::federated;
using fedgan::testing::world;

namespace {

// Rows of a table as this rank's parties: rank r hosts [r·P/R, (r+1)·P/R), as in training.
struct LocalRows {
  std::vector<std::vector<float>> rows;
  std::vector<PartyVector> updates;
};

LocalRows local_rows(const std::vector<std::vector<float>>& table,
                     const std::vector<double>& weights) {
  auto& comm = world();
  const int P = static_cast<int>(table.size()), R = comm.size(), r = comm.rank();
  LocalRows out;
  for (int k = r * P / R; k < (r + 1) * P / R; ++k) out.rows.push_back(table[k]);
  for (int k = r * P / R, i = 0; k < (r + 1) * P / R; ++k, ++i)
    out.updates.push_back({k, weights[k], out.rows[i].data()});
  return out;
}

RobustResult aggregate(const std::vector<std::vector<float>>& table, AggregatorConfig config,
                       const std::vector<double>& weights = {1, 1, 1, 1, 1}) {
  auto local = local_rows(table, weights);
  return robust_aggregate(world(), config, local.updates,
                          static_cast<std::int64_t>(table.front().size()));
}

AggregatorConfig rule(AggregationRule r) {
  AggregatorConfig c;
  c.rule = r;
  return c;
}

// The same table as the unit test: medians and trimmed means worked by hand there.
const std::vector<std::vector<float>> kTable = {
    {1, 2, 3, 4, 5, 6, 7},      {2, 2, -1, 0, 10, 6, 0.5}, {3, -4, 3, 8, 5, 1, 0.25},
    {100, 2, 2, -100, 5, 6, 1}, {-50, 0, 7, 1, 4, 2, 0},
};

}  // namespace

TEST_CASE("coordinate shards are contiguous, cover N and differ by at most one", "[mpi][robust]") {
  // N = 7 at 4 ranks: [0,1) [1,3) [3,5) [5,7).
  CHECK(coordinate_shard(7, 4, 0).begin == 0);
  CHECK(coordinate_shard(7, 4, 0).end == 1);
  CHECK(coordinate_shard(7, 4, 1).end == 3);
  CHECK(coordinate_shard(7, 4, 2).end == 5);
  CHECK(coordinate_shard(7, 4, 3).end == 7);
  CHECK(coordinate_shard(3, 4, 0).size() == 0);  // fewer coordinates than ranks
  for (int R : {1, 2, 3, 4, 7})
    for (std::int64_t N : {0, 1, 7, 1000}) {
      std::int64_t at = 0;
      for (int r = 0; r < R; ++r) {
        const auto s = coordinate_shard(N, R, r);
        CHECK(s.begin == at);
        CHECK((s.size() == N / R || s.size() == N / R + 1));
        at = s.end;
      }
      CHECK(at == N);
    }
}

TEST_CASE("the shard exchange gives each rank every party's slice of its shard", "[mpi][robust]") {
  auto& comm = world();
  // Party k's value at coordinate c is 100k + c: every received value names where it came from.
  std::vector<std::vector<float>> table(5, std::vector<float>(7));
  for (int k = 0; k < 5; ++k)
    for (int c = 0; c < 7; ++c) table[k][c] = static_cast<float>(100 * k + c);
  auto local = local_rows(table, {1, 2, 3, 4, 5});
  const auto dir = gather_party_directory(comm, local.updates, 7);
  REQUIRE(dir.party == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(dir.weight == std::vector<double>{1, 2, 3, 4, 5});
  CHECK(dir.norm2[1] == 10000.0 * 7 + 2 * 100 * 21 + 91);  // Σ (100 + c)², c = 0..6
  const auto block = exchange_shards(comm, dir, local.updates);
  CHECK(block.range.begin == coordinate_shard(7, comm.size(), comm.rank()).begin);
  for (int i = 0; i < 5; ++i)
    for (std::int64_t c = 0; c < block.range.size(); ++c)
      CHECK(block.row(i)[c] == static_cast<float>(100 * i + block.range.begin + c));
  // And back: each rank's shard of party 2 rebuilds party 2's whole update.
  std::vector<float> mine(block.row(2), block.row(2) + block.range.size());
  CHECK(gather_shards(comm, mine, 7) == table[2]);
}

TEST_CASE("robust rules on known updates equal the hand-computed results at any rank count",
          "[mpi][robust]") {
  // Median and trimmed mean (β = 0.3 drops ⌊1.5⌋ = 1 per end); see the unit test's sorted columns.
  auto median = aggregate(kTable, rule(AggregationRule::Median));
  CHECK(median.update == std::vector<float>{2, 2, 3, 1, 5, 6, 0.5f});
  CHECK(median.parties == 5);
  CHECK(median.total_weight == 5);
  auto trimmed_cfg = rule(AggregationRule::TrimmedMean);
  trimmed_cfg.trim_beta = 0.3;
  const auto trimmed = aggregate(kTable, trimmed_cfg);
  const std::vector<double> middle_sums = {6, 4, 8, 5, 15, 14, 1.75};
  for (int c = 0; c < 7; ++c) CHECK(trimmed.update[c] == static_cast<float>(middle_sums[c] / 3));

  // Krum: b = (1..7) plus a0 = 0, a1 = e0, a2 = 2·e6, a3 = 10·(1..1), a4 = e1; scores
  // {2, 3, 9, 1345, 3} (unit test), so Krum takes party 0 and Multi-Krum (m = 3) parties 0, 1
  // and 4 (1 and 4 tie; both fit), averaged with weights 1, 2, 5.
  std::vector<std::vector<float>> krum_table(5, {1, 2, 3, 4, 5, 6, 7});
  krum_table[1][0] += 1;
  krum_table[2][6] += 2;
  for (auto& v : krum_table[3]) v += 10;
  krum_table[4][1] += 1;
  auto krum_cfg = rule(AggregationRule::Krum);
  krum_cfg.krum_f = 1;
  const std::vector<double> w = {1, 2, 3, 4, 5};
  const auto krum = aggregate(krum_table, krum_cfg, w);
  CHECK(krum.update == krum_table[0]);
  CHECK(krum.selected == std::vector<int>{0});
  krum_cfg.rule = AggregationRule::MultiKrum;
  krum_cfg.krum_m = 3;
  const auto multi = aggregate(krum_table, krum_cfg, w);
  CHECK(multi.selected == std::vector<int>{0, 1, 4});
  CHECK(multi.update == std::vector<float>{1.25f, 2.625f, 3, 4, 5, 6, 7});
  CHECK(multi.total_weight == 8);
  // m = 0 means P − f = 4: every party but the attacker.
  krum_cfg.krum_m = 0;
  CHECK(aggregate(krum_table, krum_cfg, w).selected == std::vector<int>{0, 1, 2, 4});

  // Norm bounding: norms 5, 10, 1, 50, 2 → bound 5; parties 1 and 3 are scaled to norm 5.
  std::vector<std::vector<float>> norm_table(5, std::vector<float>(7, 0.0f));
  norm_table[0][0] = 3, norm_table[0][1] = 4;
  norm_table[1][2] = 6, norm_table[1][3] = 8;
  norm_table[2][0] = 1;
  norm_table[3][5] = 30, norm_table[3][6] = 40;
  norm_table[4][1] = 2;
  const auto bounded = aggregate(norm_table, rule(AggregationRule::NormBound));
  CHECK(bounded.bound == 5);
  CHECK(bounded.selected == std::vector<int>{1, 3});
  // (3+1, 4+2, 3, 4, 0, 3, 4) / 5; the float64 sum may differ in its last bit across ranks.
  const std::vector<float> expected = {0.8f, 1.2f, 0.6f, 0.8f, 0, 0.6f, 0.8f};
  for (int c = 0; c < 7; ++c) CHECK(bounded.update[c] == Approx(expected[c]).margin(1e-7));
}

TEST_CASE("the sharded median equals a serial median bit for bit", "[mpi][robust]") {
  // Six parties (an even count: the two middle values are averaged), 1001 coordinates, random
  // values that every rank draws alike; each rank passes only its own parties.
  torch::manual_seed(42);
  const auto all = torch::randn({6, 1001});
  std::vector<std::vector<float>> table(6);
  for (int k = 0; k < 6; ++k) {
    auto row = all[k].contiguous();
    table[k].assign(row.data_ptr<float>(), row.data_ptr<float>() + 1001);
  }
  const auto sharded = aggregate(table, rule(AggregationRule::Median), {1, 1, 1, 1, 1, 1});
  // Serial reference, by other code: LibTorch's sort, then the mean of the middle two in float64.
  const auto sorted = std::get<0>(all.sort(0));
  const auto reference =
      ((sorted[2].to(torch::kFloat64) + sorted[3].to(torch::kFloat64)) / 2).to(torch::kFloat32);
  CHECK(torch::equal(torch::tensor(sharded.update), reference));
}

TEST_CASE("Krum picks from the honest cluster; robust rules ignore an attacker, FedAvg does not",
          "[mpi][robust]") {
  // A fixed toy problem: 8 parties whose honest updates are μ plus small noise (deterministic),
  // party 3 attacks. FedAvg of the attacked updates moves far from FedAvg of the honest ones;
  // each robust rule's result stays within a tolerance of the honest mean.
  const int P = 8;
  const std::int64_t N = 301;
  torch::manual_seed(7);
  const auto mu = torch::randn({N});
  const auto noise = 0.05 * torch::randn({P, N});
  std::vector<std::vector<float>> honest(P);
  for (int k = 0; k < P; ++k) {
    auto row = (mu + noise[k]).contiguous();
    honest[k].assign(row.data_ptr<float>(), row.data_ptr<float>() + N);
  }
  const std::vector<double> w(P, 1.0);
  auto fedavg = [&](const std::vector<std::vector<float>>& t) {
    std::vector<float> mean(N, 0.0f);
    for (std::int64_t c = 0; c < N; ++c) {
      double s = 0;
      for (int k = 0; k < P; ++k) s += t[k][c];
      mean[c] = static_cast<float>(s / P);
    }
    return torch::tensor(mean);
  };
  const auto clean = fedavg(honest);
  const double scale = clean.norm().item<double>();
  // Norm bounding only limits an update's size: it is expected to hold against scaling alone.
  for (const char* attack : {"sign-flip", "scale:10", "gaussian:5"}) {
    auto table = honest;
    apply_attack(parse_attack(attack, "3"), 3, 1, 0, table[3].data(), N);
    const double fedavg_moved = (fedavg(table) - clean).norm().item<double>() / scale;
    INFO(attack << ": FedAvg moved by " << fedavg_moved << " of the honest mean's norm");
    CHECK(fedavg_moved > 0.2);
    AggregatorConfig cfg;
    cfg.trim_beta = 0.125;  // one value per end of 8
    cfg.krum_f = 1;
    for (auto r : {AggregationRule::Median, AggregationRule::TrimmedMean, AggregationRule::Krum,
                   AggregationRule::MultiKrum, AggregationRule::NormBound}) {
      if (r == AggregationRule::NormBound && std::string(attack) != "scale:10") continue;
      cfg.rule = r;
      const auto result = aggregate(table, cfg, w);
      const double moved = (torch::tensor(result.update) - clean).norm().item<double>() / scale;
      INFO(to_string(r) << " moved by " << moved);
      CHECK(moved < 0.1);
      if (r == AggregationRule::Krum || r == AggregationRule::MultiKrum)
        for (int id : result.selected) CHECK(id != 3);
    }
  }
}

TEST_CASE("robust aggregation errors are agreed by every rank", "[mpi][robust]") {
  auto& comm = world();
  // Too few parties for Krum's f: 5 parties, f = 2 needs more than 6.
  AggregatorConfig krum;
  krum.rule = AggregationRule::Krum;
  krum.krum_f = 2;
  try {
    aggregate(kTable, krum);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.collective());
    CHECK_THAT(e.what(), Catch::Contains("5 contributing parties cannot tolerate --krum-f 2"));
  }
  // Updates of another length on the last rank.
  auto local = local_rows(kTable, {1, 1, 1, 1, 1});
  const std::int64_t numel = comm.rank() == comm.size() - 1 && comm.size() > 1 ? 6 : 7;
  if (comm.size() > 1) {
    try {
      robust_aggregate(comm, rule(AggregationRule::Median), local.updates, numel);
      FAIL("expected an error");
    } catch (const Error& e) {
      CHECK(e.collective());
      CHECK_THAT(e.what(), Catch::Contains("same length"));
    }
  }
  // No party at all: nothing to aggregate, on every rank.
  const auto none = robust_aggregate(comm, rule(AggregationRule::Median), {}, 7);
  CHECK(none.parties == 0);
  CHECK(none.update.empty());
}
