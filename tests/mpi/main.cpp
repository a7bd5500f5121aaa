// MPI test main: starts MPI once, runs Catch2 on every rank; only rank 0 prints successes.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "mpi_fixture.hpp"

namespace fedgan::testing {
comm::Communicator* g_comm = nullptr;
comm::Communicator& world() { return *g_comm; }
}  // namespace fedgan::testing

int main(int argc, char** argv) {
  auto comm = fedgan::comm::make_mpi_communicator(&argc, &argv);
  fedgan::testing::g_comm = comm.get();
  torch::set_num_threads(1);
  Catch::Session session;
  int rc = session.applyCommandLine(argc, argv);
  if (rc == 0) rc = session.run();
  // Any rank's failure fails the job.
  std::int64_t failed = rc != 0 ? 1 : 0;
  comm->allreduce_max(&failed, 1);
  comm.reset();
  fedgan::comm::finalize_mpi();
  return failed ? 1 : 0;
}
