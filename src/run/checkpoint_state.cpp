// Checkpoint state assembly and split (see include/fedgan/run/checkpoint_state.hpp).
#include "fedgan/run/checkpoint_state.hpp"

#include "fedgan/io/checkpoint_keys.hpp"

namespace fedgan::run {

StateParts split_state(const std::map<std::string, torch::Tensor>& state) {
  StateParts out;
  const std::string server = io::keys::kServer, party = io::keys::kParty;
  for (const auto& [k, v] : state) {
    if (k.rfind(server, 0) == 0) out.server[k.substr(server.size())] = v;
    if (k.rfind(party, 0) == 0) out.party[k] = v;
  }
  return out;
}

io::CheckpointData make_checkpoint(federated::FederatedTrainer& trainer, std::int64_t round,
                                   const std::string& config_text,
                                   const std::map<std::string, torch::Tensor>& party_state,
                                   models::Gan* ema) {
  io::CheckpointData ck;
  ck.round = round;
  ck.model = trainer.global().config();
  ck.architecture = ck.model.to_string();
  ck.config_text = config_text;
  if (const auto widths = trainer.widths()) ck.widths = widths->config().to_string();
  const auto& g = ema ? ema->g_flat() : trainer.global().g_flat();
  for (auto& [k, v] : io::named_tensors(g)) ck.generator[k] = v;
  if (ema)
    ck.state[std::string(io::keys::kServer) + io::keys::kGRaw] = trainer.global().g_flat().flat();
  for (auto& [k, v] : io::named_tensors(trainer.global().d_flat())) ck.discriminator[k] = v;
  for (auto& [k, v] : trainer.server_state()) ck.state[io::keys::kServer + k] = v;
  for (auto& [k, v] : party_state) ck.state[k] = v;
  return ck;
}

}  // namespace fedgan::run
