// Test hooks (hidden options --debug-nan-party/--debug-nan-round/--debug-stop-round): they
// let the command-line tests reach paths a healthy run never takes, and are kept apart from
// the configs a run is defined by.
#pragma once

namespace fedgan::federated {

struct DebugHooks {
  int nan_party = -1;   // this party's update is made NaN ...
  int nan_round = -1;   // ... in this round
  int stop_round = -1;  // the run acts as if SIGUSR1 arrived in this round
};

}  // namespace fedgan::federated
