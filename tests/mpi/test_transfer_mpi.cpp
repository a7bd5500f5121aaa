// Warm start: rank 0 loads the pretrained tensors, one broadcast per model, every rank ends
// with the same model, at any rank count.
#include <catch2/catch.hpp>

#include "fedgan/federated/round/federated_trainer.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/transfer/warm_start.hpp"
#include "mpi_fixture.hpp"

using namespace fedgan;
using fedgan::testing::world;

TEST_CASE("warm start gives identical models on all ranks", "[mpi][transfer]") {
  auto& comm = world();
  models::ModelConfig c;
  c.latent_dim = 8;
  c.g_width = 8;
  c.d_width = 4;
  torch::manual_seed(42);
  models::Gan pretrained(c);
  federated::FederatedConfig fc;
  fc.seed = static_cast<std::uint64_t>(comm.rank());  // every rank starts from another model
  train::LocalTrainConfig lc;
  federated::FederatedTrainer t(comm, c, lc, fc, {}, comm.size());
  if (comm.is_root()) {
    transfer::load_partial(t.global().g_flat(), io::named_tensors(pretrained.g_flat()));
    transfer::load_partial(t.global().d_flat(), io::named_tensors(pretrained.d_flat()));
  }
  t.broadcast_global(0);
  CHECK(torch::equal(t.global().g_flat().flat(), pretrained.g_flat().flat()));
  CHECK(torch::equal(t.global().d_flat().flat(), pretrained.d_flat().flat()));
  // And the same bytes everywhere (a checksum per rank, gathered).
  double sum = t.global().g_flat().flat().to(torch::kFloat64).abs().sum().item<double>();
  std::vector<double> all(static_cast<std::size_t>(comm.size()));
  comm.allgather(&sum, sizeof(sum), all.data());
  for (double s : all) CHECK(s == all[0]);
}
