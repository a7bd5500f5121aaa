// The keys under /state in a checkpoint (docs/DESIGN.md, "Checkpoint"), defined in one place:
// the server step's optimizer state and each party's own state, and the assembly of a
// checkpoint from a trainer.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>

#include "fedgan/io/checkpoint.hpp"

namespace fedgan::federated {

class FederatedTrainer;

namespace layout {

inline constexpr const char* kServer = "server/";  // server/g/<what>, server/d/<what>
inline constexpr const char* kServerG = "g/";      // within the server state: G's optimizer
inline constexpr const char* kServerD = "d/";      // ... and D's
inline constexpr const char* kParty = "party/";    // party/<id>/<what>

// Names of a party's own state, after party_prefix(id).
inline constexpr const char* kGExpAvg = "g_exp_avg";
inline constexpr const char* kGExpAvgSq = "g_exp_avg_sq";
inline constexpr const char* kGStep = "g_step";
inline constexpr const char* kDExpAvg = "d_exp_avg";
inline constexpr const char* kDExpAvgSq = "d_exp_avg_sq";
inline constexpr const char* kDStep = "d_step";
inline constexpr const char* kGBuffers = "g_buffers";
inline constexpr const char* kDBuffers = "d_buffers";

// "party/<id>/"
std::string party_prefix(int party);

// A checkpoint's /state split into the server step's state (keys without "server/") and the
// parties' (full keys, "party/<id>/<what>").
struct StateParts {
  std::map<std::string, torch::Tensor> server, party;
};
StateParts split_state(const std::map<std::string, torch::Tensor>& state);

}  // namespace layout

// The global model, the server state and the parties' own state (every rank's, gathered on
// rank 0 by gather_party_state) as a checkpoint of `round`.
io::CheckpointData make_checkpoint(FederatedTrainer& trainer, std::int64_t round,
                                   const std::string& config_text,
                                   const std::map<std::string, torch::Tensor>& party_state);

}  // namespace fedgan::federated
