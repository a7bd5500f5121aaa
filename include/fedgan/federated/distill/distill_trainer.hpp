// DistillTrainer: the round of --federation distill (docs/DESIGN.md, "Federated distillation").
// One global generator G, identical on every rank; every party keeps its own discriminator D_k
// (any architecture: PartyDiscriminator), which never leaves its rank and is never averaged.
// Each step of a round: every rank draws the same latents and makes the same generated batch
// G(z); each participating party trains its D_k on (its real batch, that batch) and gives its
// logits and then its image feedback; FeedbackAggregator combines them (UA-GAN) in two float64
// collectives, and every rank backpropagates the same aggregated image gradient through G and
// takes the same Adam step, so G stays identical without a broadcast.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/federated/distill/distill_config.hpp"
#include "fedgan/federated/distill/ua_feedback.hpp"
#include "fedgan/federated/round/federated_trainer.hpp"
#include "fedgan/federated/round/party_runner.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/train/flat_adam.hpp"
#include "fedgan/train/local_trainer.hpp"

namespace fedgan::federated {

// One party's own discriminator on its rank: the model (values on a flat buffer), its flat
// gradient and its Adam state.
struct PartyDiscriminator {
  int party = 0;
  std::string spec;  // how the log and errors name its architecture
  std::shared_ptr<models::Discriminator> model;
  models::FlatParameters flat;
  torch::Tensor grad;
  train::FlatAdam adam;
};

// Party `party`'s D from its spec (nullptr: the run's D), built from
// torch::manual_seed(derive_seed(seed, "pdis", party)) so that its initial weights do not
// depend on the rank hosting it, then one dry forward of two images (eval mode): its output
// must be one finite logit per image. fedgan::Error naming the party and the spec otherwise.
std::unique_ptr<PartyDiscriminator> make_party_discriminator(
    const models::ModelConfig& run_model, const DiscriminatorSpec* spec,
    const std::string& script_archive, int party, std::uint64_t seed, double lr_d, double beta1,
    double beta2, const torch::Device& device);

// What one party would send and receive per round in a deployment with G on a server (bytes).
struct DistillTraffic {
  std::int64_t steps = 0, batch = 0, image_values = 0;  // C·H·W
  std::int64_t down = 0;    // per step: the generated images and the cotangents (B floats)
  std::int64_t up = 0;      // per step: the logits (B floats) and the image feedback
  std::int64_t fedavg = 0;  // FedAvg's: 2 × (G + D values) × 4
};

class DistillTrainer {
 public:
  // `global`: the run's model (its G is trained here; its D is not used). `parties`: this rank's.
  DistillTrainer(comm::Communicator& comm, models::Gan& global, train::LocalTrainConfig local,
                 const FederatedConfig& fed, const DistillConfig& distill,
                 std::vector<LocalParty> parties, int total_parties);

  // Round `round` (1-based). `interrupted` is asked before every step; when it answers true on
  // any rank, every rank abandons the round (report.interrupted) and G, its Adam state and every
  // party's D are put back as the last round left them. A NaN/inf logit or D loss puts them back
  // too and throws a collective fedgan::Error naming the round, the step and the party.
  RoundReport run_round(int round, const std::function<bool()>& interrupted = {});

  // G's Adam state ("distill_g/…"), and each hosted party's D values and Adam state
  // ("party/<id>/distill_d/…"); keys in io/checkpoint_keys.hpp.
  std::map<std::string, torch::Tensor> server_state() const;
  void load_server_state(const std::map<std::string, torch::Tensor>& state);
  std::map<std::string, torch::Tensor> party_state_tensors() const;
  void load_party_state_tensors(const std::map<std::string, torch::Tensor>& tensors);

  DistillTraffic traffic(std::int64_t fedavg_values) const;
  const std::vector<std::unique_ptr<PartyDiscriminator>>& discriminators() const {
    return m_discriminators;
  }

 private:
  void gather_party_table();
  struct Backup;
  Backup backup() const;
  void restore(const Backup& saved);
  const data::Batch& next_batch(std::size_t hosted_index);

  comm::Communicator& m_comm;
  models::Gan& m_global;
  train::LocalTrainConfig m_local;
  FederatedConfig m_fed;
  std::vector<LocalParty> m_parties;
  int m_total_parties;
  std::vector<std::int64_t> m_party_samples;                          // n_k by party id
  std::vector<std::unique_ptr<PartyDiscriminator>> m_discriminators;  // by m_parties' order
  train::FlatAdam m_g_adam;
  std::unique_ptr<models::GanLoss> m_loss;
  FeedbackCombine m_combine;
  FeedbackAggregator m_feedback;
  // The real batches of the hosted parties in this round: epoch number and position.
  struct Stream {
    std::int64_t epoch = 0;
    std::size_t next = 0;
    std::vector<data::Batch> batches;
  };
  std::vector<Stream> m_streams;
};

}  // namespace fedgan::federated
