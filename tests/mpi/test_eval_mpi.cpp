// Parallel evaluation equals the serial one to the last digit: real statistics, generated-sample
// statistics and every figure (FID, KID, precision/recall) at R ranks are compared with == to a
// single-rank run of the same data with another thread count (2). That is exact because the
// work is cut into chunks fixed by the data, each computed on one intra-op thread, and merged in
// chunk order (include/fedgan/eval/chunked.hpp). Sample counts divide neither by the chunk size
// nor by the rank count. Correct at any rank count.
#include <spdlog/fmt/fmt.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "../unit/eval/test_eval_fixtures.hpp"
#include "fedgan/eval/evaluate.hpp"
#include "fedgan/models/gan.hpp"
#include "mpi_fixture.hpp"

using namespace fedgan;
using namespace fedgan::eval;
using fedgan::testing::world;

namespace {

// CHECK, not REQUIRE: a rank leaving a test early would leave the others in a collective.
void check_identical(const FeatureStats& a, const FeatureStats& b) {
  CHECK(a.count == b.count);
  CHECK(torch::equal(a.sum, b.sum));
  CHECK(torch::equal(a.outer, b.outer));
}

void check_identical(const EvalResult& a, const EvalResult& b) {
  CHECK(a.n == b.n);
  CHECK(a.n_real == b.n_real);
  CHECK(a.n_real_subset == b.n_real_subset);
  CHECK(a.fid_all == b.fid_all);
  CHECK(a.fid_avg == b.fid_avg);
  CHECK(a.fid_parties == b.fid_parties);
  CHECK(a.kid == b.kid);
  CHECK(a.precision == b.precision);
  CHECK(a.recall == b.recall);
  // Real figures, not NaN == NaN failing or trivially equal zeros.
  CHECK(std::isfinite(a.kid));
  CHECK(a.fid_all > 0);
}

// The serial reference runs with 2 intra-op threads (the MPI tests run with 1).
template <class Fn>
auto with_two_threads(Fn&& fn) {
  const int previous = at::get_num_threads();
  at::set_num_threads(2);
  auto result = fn();
  at::set_num_threads(previous);
  return result;
}

}  // namespace

TEST_CASE("evaluation at any rank count equals the serial evaluation to the last digit",
          "[mpi][eval]") {
  auto& comm = world();
  auto serial = comm::make_serial_communicator();
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
  ro.chunk = 32;  // 4 chunks per party, the last of 5 or 4 rows: 12 chunks over R ranks
  const auto par = compute_real_stats(comm, path, ev, ro);
  const auto ser = with_two_threads([&] { return compute_real_stats(*serial, path, ev, ro); });
  CHECK(par.all.count == 301);
  check_identical(par.all, ser.all);
  REQUIRE(par.parties.size() == ser.parties.size());
  for (std::size_t k = 0; k < par.parties.size(); ++k)
    check_identical(par.parties[k], ser.parties[k]);
  CHECK(par.features.size(0) == 150);
  CHECK(torch::equal(par.features, ser.features));

  EvalOptions o;
  o.n = 157;
  o.chunk = 32;  // 5 chunks, the last of 29
  check_identical(evaluate_images(comm, uniform_noise_source(ev.config(), 3), "noise", ev, par, o),
                  with_two_threads([&] {
                    return evaluate_images(*serial, uniform_noise_source(ev.config(), 3), "noise",
                                           ev, ser, o);
                  }));

  const auto model = models::ModelConfig::parse("dcgan c=1 s=28 z=8 gw=4 dw=4 k=3 dn=batch");
  torch::manual_seed(0);
  models::Gan gan(model);
  o.n = 300;  // crosses a latent block boundary (256)
  for (const std::int64_t chunk : {kDefaultChunk, std::int64_t{64}}) {
    o.chunk = chunk;
    const auto g_par = evaluate_generator(comm, gan.generator(), model, ev, par, o);
    const auto g_ser = with_two_threads(
        [&] { return evaluate_generator(*serial, gan.generator(), model, ev, ser, o); });
    check_identical(g_par, g_ser);
    // Every rank holds the same figures.
    const auto figures = comm.allgather(
        fmt::format("{:.17g} {:.17g} {:.17g}", g_par.fid_all, g_par.kid, g_par.precision));
    for (const auto& f : figures) CHECK(f == figures[0]);
  }

  comm.barrier();
  if (comm.is_root()) std::filesystem::remove(path);
}
