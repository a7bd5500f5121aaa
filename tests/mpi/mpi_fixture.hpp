// Access to the world communicator from MPI tests (started once in tests/mpi/main.cpp).
#pragma once

#include "fedgan/comm/communicator.hpp"

namespace fedgan::testing {
comm::Communicator& world();
}  // namespace fedgan::testing
