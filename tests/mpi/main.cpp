// MPI test main: starts MPI once, runs Catch2 on every rank. A failed assertion on any rank
// ends the whole job at once (MpiAbortOnFailure below), so the other ranks never wait in a
// collective for a rank that has left the test.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>

#include "mpi_fixture.hpp"

namespace fedgan::testing {
comm::Communicator* g_comm = nullptr;
comm::Communicator& world() { return *g_comm; }
}  // namespace fedgan::testing

namespace {

// A failed assertion on one rank: that rank leaves the test (REQUIRE) or goes on alone to its
// end (CHECK), while the other ranks may be waiting for it in a collective. So at the end of
// the first section that saw a failure on this rank (for REQUIRE and unexpected exceptions:
// right after the failure; for CHECK: when the section or test case ends), print which rank and
// test failed and abort every rank through the communicator (MPI_Abort). Catch's console
// reporter has already printed the assertion itself.
class MpiAbortOnFailure : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;

  void testCaseStarting(Catch::TestCaseInfo const& info) override {
    TestEventListenerBase::testCaseStarting(info);
    m_test = info.name;
  }

  bool assertionEnded(Catch::AssertionStats const& stats) override {
    // A signal (a crash, or the SIGTERM with which mpirun ends the other ranks after an
    // MPI_Abort): Catch reports it from its signal handler, then the signal ends this process
    // and mpirun the job. No MPI from a signal handler, and no second "failure" to report.
    if (stats.assertionResult.getResultType() == Catch::ResultWas::FatalErrorCondition)
      m_signalled = true;
    return TestEventListenerBase::assertionEnded(stats);
  }

  void sectionEnded(Catch::SectionStats const& stats) override {
    if (stats.assertions.failed > 0) abort_all(stats.sectionInfo.name, stats.assertions.failed);
    TestEventListenerBase::sectionEnded(stats);
  }

  void testCaseEnded(Catch::TestCaseStats const& stats) override {
    if (stats.totals.assertions.failed > 0) abort_all(m_test, stats.totals.assertions.failed);
    TestEventListenerBase::testCaseEnded(stats);
  }

 private:
  void abort_all(std::string const& section, std::uint64_t failed) {
    if (m_signalled) return;
    auto& comm = fedgan::testing::world();
    std::cout.flush();
    std::cerr << "\nfedgan_mpi_tests: rank " << comm.rank() << " of " << comm.size()
              << ": test case \"" << m_test << "\"";
    if (section != m_test) std::cerr << ", section \"" << section << "\"";
    std::cerr << ": " << failed << " assertion(s) failed; aborting every rank" << std::endl;
    std::fflush(nullptr);
    comm.abort(1);
  }

  std::string m_test;
  bool m_signalled = false;
};

}  // namespace

CATCH_REGISTER_LISTENER(MpiAbortOnFailure)

int main(int argc, char** argv) {
  auto comm = fedgan::comm::make_mpi_communicator(&argc, &argv);
  fedgan::testing::g_comm = comm.get();
  torch::set_num_threads(1);
  Catch::Session session;
  int rc = session.applyCommandLine(argc, argv);
  if (rc == 0) {
    rc = session.run();
    // Catch returns the number of entries listed for a listing (tests/CMakeLists.txt reads
    // --list-test-names-only to register one CTest test per test case): that is a success.
    auto const& config = session.config();
    if (config.listTests() || config.listTestNamesOnly() || config.listTags() ||
        config.listReporters())
      rc = 0;
  }
  // Any rank's failure fails the job.
  std::int64_t failed = rc != 0 ? 1 : 0;
  comm->allreduce_max(&failed, 1);
  comm.reset();
  fedgan::comm::finalize_mpi();
  return failed ? 1 : 0;
}

// Deliberately failing cases, hidden ([.fail-demo]: run only when named). CTest runs each on 2
// ranks (mpi.abort.*) and expects a quick failure that names the rank, not a hang: without the
// listener above, rank 1 would leave (REQUIRE) or finish (CHECK) while rank 0 waits in a
// barrier rank 1 never joins, until the test's timeout.
TEST_CASE("fail-demo: a REQUIRE failing on one rank ends every rank", "[.fail-demo]") {
  auto& comm = fedgan::testing::world();
  REQUIRE(comm.size() > 1);
  REQUIRE(comm.rank() != 1);
  comm.barrier();
}

TEST_CASE("fail-demo: a CHECK failing on one rank ends every rank", "[.fail-demo]") {
  auto& comm = fedgan::testing::world();
  REQUIRE(comm.size() > 1);
  CHECK(comm.rank() != 1);
  comm.barrier();
  if (comm.rank() != 1) comm.barrier();
}
