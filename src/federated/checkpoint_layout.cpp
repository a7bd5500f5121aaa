// Checkpoint state keys and assembly (see include/fedgan/federated/checkpoint_layout.hpp).
#include "fedgan/federated/checkpoint_layout.hpp"

#include "fedgan/federated/federated_trainer.hpp"

namespace fedgan::federated {
namespace layout {

std::string party_prefix(int party) { return std::string(kParty) + std::to_string(party) + "/"; }

StateParts split_state(const std::map<std::string, torch::Tensor>& state) {
  StateParts out;
  const std::string server = kServer, party = kParty;
  for (const auto& [k, v] : state) {
    if (k.rfind(server, 0) == 0) out.server[k.substr(server.size())] = v;
    if (k.rfind(party, 0) == 0) out.party[k] = v;
  }
  return out;
}

}  // namespace layout

io::CheckpointData make_checkpoint(FederatedTrainer& trainer, std::int64_t round,
                                   const std::string& config_text,
                                   const std::map<std::string, torch::Tensor>& party_state) {
  io::CheckpointData ck;
  ck.round = round;
  ck.architecture = trainer.global().config().to_string();
  ck.config_text = config_text;
  for (auto& [k, v] : io::named_tensors(trainer.global().g_flat())) ck.generator[k] = v;
  for (auto& [k, v] : io::named_tensors(trainer.global().d_flat())) ck.discriminator[k] = v;
  for (auto& [k, v] : trainer.server_state()) ck.state[layout::kServer + k] = v;
  for (auto& [k, v] : party_state) ck.state[k] = v;
  return ck;
}

}  // namespace fedgan::federated
