// Broadcast of a name -> tensor map from one rank (names, dtypes and shapes travel first).
#pragma once

#include "fedgan/comm/communicator.hpp"

#include <torch/types.h>

#include <map>
#include <string>

namespace fedgan::comm {

// On `root` the map is sent; on the other ranks it is replaced by the received copy.
void broadcast_tensors(Communicator& comm, std::map<std::string, torch::Tensor>& tensors,
                       int root = 0);

}  // namespace fedgan::comm
