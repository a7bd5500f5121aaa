// Federated distillation across ranks: R ranks hosting 4/R parties each train the same G and the
// same parties' Ds as one rank hosting all 4, bit for bit.
#include <catch2/catch.hpp>

#include "fedgan/core/torch_compat.hpp"
#include "fedgan/federated/distill/distill_trainer.hpp"
#include "mpi_fixture.hpp"

using namespace fedgan;
using fedgan::testing::world;

namespace {

std::vector<federated::LocalParty> distill_parties(int first, int last) {
  std::vector<federated::LocalParty> out;
  for (int k = first; k < last; ++k) {
    const std::int64_t n = 10 + 5 * k;
    auto gen = compat::make_cpu_generator(200 + static_cast<std::uint64_t>(k));
    out.push_back({k, std::make_shared<data::TensorPartyData>(
                          torch::rand({n, 1, 28, 28}, gen) * 2 - 1, torch::Tensor(),
                          2000 + static_cast<std::uint64_t>(k))});
  }
  return out;
}

}  // namespace

TEST_CASE("distill: R ranks x 4/R parties equal 1 rank x 4 parties, bit for bit",
          "[mpi][distill]") {
  auto& comm = world();
  const int R = comm.size();
  if (4 % R != 0) return;
  const int per = 4 / R;
  models::ModelConfig model;
  model.latent_dim = 8;
  model.g_width = 4;
  model.d_width = 4;
  train::LocalTrainConfig local;
  local.local_steps = 3;
  local.batch_size = 8;
  federated::FederatedConfig fc;
  fc.seed = 4;
  fc.participation = 0.75;
  fc.optimizer_state = federated::OptimizerState::Keep;
  federated::DistillConfig dc;
  dc.discriminators = {federated::parse_discriminator_spec("dw=4,dn=batch"),
                       federated::parse_discriminator_spec("dw=6,dn=spectral"),
                       federated::parse_discriminator_spec("dw=8,dn=none")};
  dc.script_archives.resize(3);
  torch::manual_seed(4);
  models::Gan g_distributed(model);
  torch::manual_seed(4);
  models::Gan g_serial(model);
  federated::DistillTrainer distributed(comm, g_distributed, local, fc, dc,
                                        distill_parties(comm.rank() * per, (comm.rank() + 1) * per),
                                        4);
  auto serial_comm = comm::make_serial_communicator();
  federated::DistillTrainer serial(*serial_comm, g_serial, local, fc, dc, distill_parties(0, 4), 4);
  for (int round = 1; round <= 3; ++round) {
    const auto a = distributed.run_round(round);
    const auto b = serial.run_round(round);
    CHECK(a.parties == 3);
    CHECK(a.samples == b.samples);
    CHECK(a.g_loss == b.g_loss);
  }
  CHECK(torch::equal(g_distributed.g_flat().flat(), g_serial.g_flat().flat()));
  for (std::size_t i = 0; i < distributed.discriminators().size(); ++i) {
    const auto& d = *distributed.discriminators()[i];
    CHECK(torch::equal(d.flat.flat(),
                       serial.discriminators()[static_cast<std::size_t>(d.party)]->flat.flat()));
  }
}
