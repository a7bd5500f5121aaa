// A checkpoint from a trainer and back: the global model, the server state and every party's
// own state (their keys: io/checkpoint_keys.hpp), and the split of a checkpoint's /state into
// the server's part and the parties' part on resume.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>

#include "fedgan/federated/round/federated_trainer.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/models/gan.hpp"

namespace fedgan::run {

// A checkpoint's /state split into the server step's state (keys without "server/") and the
// parties' (full keys, "party/<id>/<what>").
struct StateParts {
  std::map<std::string, torch::Tensor> server, party;
};
StateParts split_state(const std::map<std::string, torch::Tensor>& state);

// The global model, the server state and the parties' own state (every rank's, gathered on
// rank 0 by gather_party_state) as a checkpoint of `round`. With a generator EMA (`ema`, a
// model holding the average), /generator holds the EMA, which sampling, evaluation and warm
// starts read, and the trained generator goes to /state/server/g_raw for resume.
io::CheckpointData make_checkpoint(federated::FederatedTrainer& trainer, std::int64_t round,
                                   const std::string& config_text,
                                   const std::map<std::string, torch::Tensor>& party_state,
                                   models::Gan* ema = nullptr);

}  // namespace fedgan::run
