// The serial communicator behaves as a job of one rank, and agree_ok raises on failure.
#include <catch2/catch.hpp>

#include "fedgan/comm/collective.hpp"
#include "fedgan/comm/communicator.hpp"

using namespace fedgan;

TEST_CASE("serial communicator is a one-rank job", "[comm]") {
  auto comm = comm::make_serial_communicator();
  CHECK(comm->rank() == 0);
  CHECK(comm->size() == 1);
  auto t = torch::arange(5, torch::kFloat32);
  comm->allreduce_sum(t);
  CHECK(torch::equal(t, torch::arange(5, torch::kFloat32)));
  auto all = comm->allgather(std::string("abc"));
  REQUIRE(all.size() == 1);
  CHECK(all[0] == "abc");
}

TEST_CASE("agree_ok and comm::collective_try raise a collective error", "[comm]") {
  auto comm = comm::make_serial_communicator();
  CHECK_NOTHROW(comm->agree_ok(true, ""));
  try {
    comm::collective_try(*comm, [] { throw std::runtime_error("broken shard"); });
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.collective());
    CHECK(std::string(e.what()).find("broken shard") != std::string::npos);
  }
  CHECK(comm::collective_try(*comm, [] { return 7; }) == 7);
}

TEST_CASE("allreduce refuses non-contiguous tensors", "[comm]") {
  auto comm = comm::make_serial_communicator();
  auto t = torch::zeros({4, 4}).t();
  CHECK_THROWS_AS(comm->allreduce_sum(t), Error);
}
