// Parallel evaluation equals the serial one: real statistics split over ranks and combined by
// one allreduce, and generated-sample statistics and metrics, match a single-rank computation of
// the same data on each rank. Correct at any rank count.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "../unit/test_eval_fixtures.hpp"
#include "fedgan/eval/evaluate.hpp"
#include "fedgan/models/gan.hpp"
#include "mpi_fixture.hpp"

using namespace fedgan;
using namespace fedgan::eval;
using fedgan::testing::world;

namespace {

// CHECK, not REQUIRE: a rank leaving a test early would leave the others in a collective.
void check_same(const EvalResult& a, const EvalResult& b) {
  CHECK(a.n == b.n);
  CHECK(a.n_real == b.n_real);
  CHECK(a.fid_all == Approx(b.fid_all).epsilon(1e-5));
  CHECK(a.fid_avg == Approx(b.fid_avg).epsilon(1e-5));
  CHECK(a.kid == Approx(b.kid).epsilon(1e-4).margin(1e-7));
  CHECK(a.precision == Approx(b.precision).margin(0.011));
  CHECK(a.recall == Approx(b.recall).margin(0.011));
}

}  // namespace

TEST_CASE("evaluation across ranks equals the serial evaluation", "[mpi][eval]") {
  auto& comm = world();
  auto serial = make_serial_communicator();
  std::string path;
  if (comm.is_root()) {
    path = (std::filesystem::temp_directory_path() /
            ("fedgan_mpi_eval_" + std::to_string(::getpid()) + ".h5"))
               .string();
    testing::write_synthetic_dataset(path, 301, 3, 5);  // parties of 101, 100, 100 rows
  }
  comm.broadcast(path, 0);
  comm.barrier();
  auto ev = testing::tiny_evaluator(0);  // same seed, same thread count: same weights everywhere
  const auto sums = comm.allgather(ev.checksum());
  for (const auto& s : sums) CHECK(s == ev.checksum());

  RealStatsOptions ro;
  ro.max_features = 150;
  const auto par = compute_real_stats(comm, path, ev, ro);
  const auto ser = compute_real_stats(*serial, path, ev, ro);
  CHECK(par.all.count == 301);
  CHECK(par.all.count == ser.all.count);
  CHECK(torch::allclose(par.all.sum, ser.all.sum, 1e-9, 1e-6));
  CHECK(torch::allclose(par.all.outer, ser.all.outer, 1e-9, 1e-6));
  REQUIRE(par.parties.size() == ser.parties.size());
  for (std::size_t k = 0; k < par.parties.size(); ++k) {
    CHECK(par.parties[k].count == ser.parties[k].count);
    CHECK(torch::allclose(par.parties[k].outer, ser.parties[k].outer, 1e-9, 1e-6));
  }
  CHECK(torch::allclose(par.features, ser.features, 1e-5, 1e-5));

  EvalOptions o;
  o.n = 157;  // not a multiple of the rank count
  check_same(evaluate_images(comm, uniform_noise_source(ev.config(), 3), "noise", ev, par, o),
             evaluate_images(*serial, uniform_noise_source(ev.config(), 3), "noise", ev, ser, o));

  const auto model = ModelConfig::parse("dcgan c=1 s=28 z=8 gw=4 dw=4 k=3 dn=batch");
  torch::manual_seed(0);
  Gan gan(model);
  o.n = 300;  // crosses a latent block boundary (256)
  const auto g_par = evaluate_generator(comm, gan.generator(), model, ev, par, o);
  const auto g_ser = evaluate_generator(*serial, gan.generator(), model, ev, ser, o);
  check_same(g_par, g_ser);
  // The allreduced statistics are the same on every rank.
  const auto fids = comm.allgather(std::to_string(g_par.fid_all));
  for (const auto& f : fids) CHECK(f == fids[0]);

  comm.barrier();
  if (comm.is_root()) std::filesystem::remove(path);
}
