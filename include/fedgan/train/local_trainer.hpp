// Local GAN training of one party: D and G updates with Adam on the party's own shard.
#pragma once

#include "fedgan/models/gan.hpp"
#include "fedgan/models/losses.hpp"
#include "fedgan/train/flat_adam.hpp"

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace fedgan::train {

struct TrainBatch {
  torch::Tensor images;  // float [B, C, H, W] in [-1, 1]
  torch::Tensor labels;  // int64 [B], or undefined
};

// A party's data as the trainer sees it: shuffled batches for a given epoch number.
class PartyData {
 public:
  virtual ~PartyData() = default;
  virtual std::int64_t size() const = 0;
  // The epoch's batches, shuffled deterministically from (seed, party, epoch).
  virtual std::vector<TrainBatch> epoch(std::int64_t epoch, int batch_size) = 0;
};

// In-memory party data (tests, and the adapter over ShardLoader).
class TensorPartyData final : public PartyData {
 public:
  TensorPartyData(torch::Tensor images, torch::Tensor labels, std::uint64_t seed);
  std::int64_t size() const override { return m_images.size(0); }
  std::vector<TrainBatch> epoch(std::int64_t epoch, int batch_size) override;

 private:
  torch::Tensor m_images, m_labels;
  std::uint64_t m_seed;
};

struct LocalTrainConfig {
  int local_epochs = 1;
  int local_steps = 0;  // > 0: exactly this many steps per round instead of epochs
  int batch_size = 64;
  int d_steps = 1;      // D updates per G update
  double lr_g = 2e-4;
  double lr_d = 2e-4;
  double beta1 = 0.5;
  double beta2 = 0.999;
  std::string loss = "bce";
  double gp_weight = 10.0;
  // Knowledge distillation from a frozen teacher generator (the pretrained one):
  // G's loss += kd_weight · kd_decay^(round-1) · mean((G(z) - T(z))²) on the same z.
  double kd_weight = 0.0;
  double kd_decay = 1.0;
  // The G step's fake batch: false draws a fresh one (one more G forward per step); true
  // reuses the D step's (the pytorch/examples dcgan form: G(z) once, D on it detached for D's
  // loss, then D on it again for G's). With d_steps > 1 the last D step's batch is reused.
  bool reuse_fake = false;
  // CUDA only: forward passes under bfloat16 autocast (losses and BatchNorm stay float32).
  bool autocast_bf16 = false;
};

// The distillation loss between a student's and a teacher's outputs on the same inputs:
// mean squared difference (0 exactly when they agree).
torch::Tensor kd_loss(const torch::Tensor& student, const torch::Tensor& teacher);

// The optimizers of one party, bound to the (shared) local model's flat buffers.
struct PartyOptimizers {
  FlatAdam g, d;
};
PartyOptimizers make_party_optimizers(models::Gan& local, const LocalTrainConfig& config);

struct LocalResult {
  double d_loss = 0;  // mean over steps
  double g_loss = 0;
  std::int64_t steps = 0;
  std::int64_t images = 0;  // real images seen
  bool finite = true;       // false: a loss or the model became NaN/inf
  bool interrupted = false; // stopped early on request (preemption)
};

class LocalTrainer {
 public:
  explicit LocalTrainer(LocalTrainConfig config);
  const LocalTrainConfig& config() const { return m_config; }

  // One D update (d_steps times) and one G update on a real batch; returns (d_loss, g_loss).
  std::pair<double, double> step(models::Gan& gan, PartyOptimizers& opt, const TrainBatch& batch,
                                 torch::Generator& gen);
  // The same step, its losses left as scalar tensors on the model's device (no host sync):
  // D's loss averaged over its d_steps, G's loss.
  std::pair<torch::Tensor, torch::Tensor> step_async(models::Gan& gan, PartyOptimizers& opt,
                                                     const TrainBatch& batch,
                                                     torch::Generator& gen);

  // The party's local work for one round: local_epochs over its data (or local_steps).
  // `epoch_base` numbers the epochs so every (party, round, epoch) shuffles differently.
  // `interrupted` (optional) is asked before every step; when it answers true the party
  // stops at once and the result says so. `gen` must be a generator of the model's device.
  // On the CPU every step's losses are checked at once; on a GPU they are summed on the
  // device and read once at the end (a host read per step would stall the GPU's queue), so a
  // non-finite party there is found after its last step, not at its first bad one.
  // The teacher for knowledge distillation (frozen; same latent and label inputs as G).
  void set_teacher(std::shared_ptr<models::Generator> teacher) { m_teacher = std::move(teacher); }
  // Sets the round, which scales the distillation weight by kd_decay^(round-1).
  void set_round(int round);
  double kd_weight_now() const { return m_kd_now; }

  LocalResult run(models::Gan& gan, PartyOptimizers& opt, PartyData& data, std::int64_t epoch_base,
                  torch::Generator& gen, const std::function<bool()>& interrupted = {});

 private:
  LocalTrainConfig m_config;
  std::unique_ptr<models::GanLoss> m_loss;
  std::shared_ptr<models::Generator> m_teacher;
  double m_kd_now = 0.0;
};

}  // namespace fedgan::train
