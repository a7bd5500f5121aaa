// Client-level DP across ranks: the Poisson draw, clipping, both noise placements and the
// adaptive clip give the same model at any rank count, and one account.
#include <catch2/catch.hpp>

#include "../unit/federated/toy_federation.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/federated/round/federated_trainer.hpp"
#include "fedgan/privacy/dp_fedavg.hpp"
#include "mpi_fixture.hpp"

using namespace fedgan;
using fedgan::testing::world;

namespace {

// Party k holds 12 + 4k images.
std::vector<federated::LocalParty> dp_mpi_parties(int first, int last) {
  std::vector<std::int64_t> sizes;
  for (int k = 0; k < last; ++k) sizes.push_back(12 + 4 * k);
  return testing::toy_parties(sizes, 300, 2000, first, last);
}

}  // namespace

TEST_CASE("DP-FedAvg: R ranks x 4/R parties equal 1 rank x 4 parties", "[mpi][dp]") {
  auto& comm = world();
  const int R = comm.size();
  if (4 % R != 0) return;
  const int per = 4 / R;
  train::LocalTrainConfig local;
  local.local_steps = 2;
  local.batch_size = 8;
  const std::vector<std::int64_t> sizes{12, 16, 20, 24};
  for (auto noise : {privacy::NoiseMode::Central, privacy::NoiseMode::Distributed}) {
    INFO("noise " << privacy::to_string(noise));
    federated::FederatedConfig fc;
    fc.seed = 6;
    fc.participation = 0.6;
    fc.poisson_sampling = true;
    privacy::DpConfig c;
    c.enabled = true;
    c.clip = 0.05;
    c.noise_multiplier = 0.8;
    c.noise = noise;
    c.weighting = privacy::DpWeighting::FixedN;
    c.clip_quantile = 0.5;
    c.clip_count_stddev = 1.0;
    const auto plan = privacy::make_dp_plan(c, fc.participation, sizes);
    federated::FederatedTrainer spread(comm, testing::toy_model(), local, fc,
                                       dp_mpi_parties(comm.rank() * per, (comm.rank() + 1) * per),
                                       4);
    privacy::DpFedAvg spread_dp(comm, plan);
    spread.add_update_transform(spread_dp.update_transform());
    spread.add_aggregate_transform(spread_dp.aggregate_transform());
    auto serial_comm = comm::make_serial_communicator();
    federated::FederatedTrainer serial(*serial_comm, testing::toy_model(), local, fc,
                                       dp_mpi_parties(0, 4), 4);
    privacy::DpFedAvg serial_dp(*serial_comm, plan);
    serial.add_update_transform(serial_dp.update_transform());
    serial.add_aggregate_transform(serial_dp.aggregate_transform());
    // Why == holds: as in "R ranks x 4/R parties equal 1 rank" (test_federated_mpi.cpp), each
    // party's clipped, weighted, noised update is the same float32 arithmetic in both layouts
    // (noise seeded by party and round), their float64 sum is exact for values of ordinary
    // size, the central noise is drawn from the round's seed on every rank, and the count's
    // shares lie on a 2^-20 grid.
    for (int round = 1; round <= 3; ++round) {
      const auto a = spread.run_round(round);
      const auto b = serial.run_round(round);
      CHECK(a.parties == b.parties);
    }
    CHECK(spread_dp.clip() == serial_dp.clip());
    CHECK(spread_dp.spent().epsilon == serial_dp.spent().epsilon);
    CHECK(torch::equal(spread.global().g_flat().flat(), serial.global().g_flat().flat()));
    CHECK(torch::equal(spread.global().d_flat().flat(), serial.global().d_flat().flat()));
  }
}
