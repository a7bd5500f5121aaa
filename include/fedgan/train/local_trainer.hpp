// Local GAN training of one party: D and G updates with Adam on the party's own shard, with
// optional regularizers (train/regularizer.hpp) hooked into every step.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fedgan/core/choice.hpp"
#include "fedgan/data/party_data.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/models/losses.hpp"
#include "fedgan/train/augment.hpp"
#include "fedgan/train/flat_adam.hpp"
#include "fedgan/train/lr_schedule.hpp"
#include "fedgan/train/regularizer.hpp"

namespace fedgan::train {

// --g-fake: fresh | reuse, as LocalTrainConfig::reuse_fake.
const ChoiceTable<Choice<bool>>& g_fake_choices();

struct LocalTrainConfig {
  int local_epochs = 1;
  int local_steps = 0;  // > 0: exactly this many steps per round instead of epochs
  int batch_size = 64;
  int d_steps = 1;      // D updates per G update
  double lr_g = 2e-4;
  double lr_d = 2e-4;
  double beta1 = 0.5;
  double beta2 = 0.999;
  models::LossKind loss = models::LossKind::Bce;
  double gp_weight = 10.0;
  // Knowledge distillation from the --init generator (transfer::KdRegularizer, added by the
  // run): G's loss += kd_weight · kd_decay^(round-1) · mean((G(z) - T(z))²) on the same z.
  double kd_weight = 0.0;
  double kd_decay = 1.0;
  // The G step's fake batch: false draws a fresh one (one more G forward per step); true
  // reuses the D step's (the pytorch/examples dcgan form: G(z) once, D on it detached for D's
  // loss, then D on it again for G's). With d_steps > 1 the last D step's batch is reused.
  bool reuse_fake = false;
  // CUDA only: forward passes under bfloat16 autocast (losses and BatchNorm stay float32).
  bool autocast_bf16 = false;
  // Limited-data training (docs/reference.md, "Small data"). DiffAugment on every image D sees (real and
  // fake, D's and G's steps), each operation with the trainer's augmentation probability.
  AugmentPolicy augment;
  // R1 penalty γ/2·E||∇D(x_real)||² in D's loss, computed every r1_every-th D step and then
  // weighted by r1_every (lazy regularisation, Karras et al. 2020 "StyleGAN2", sec. 3.1).
  double r1_gamma = 0.0;
  int r1_every = 1;
  // The round's Adam learning rates: lr × lr_factor(schedule, round, schedule_rounds, final).
  LrSchedule lr_schedule = LrSchedule::Constant;
  double lr_final_ratio = 0.1;
  int schedule_rounds = 1;
};

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
  // ADA's overfitting signal: Σ sign(D(real)) over the real images D saw, and their count.
  double ada_sign_sum = 0;
  double ada_count = 0;
};

class LocalTrainer {
 public:
  explicit LocalTrainer(LocalTrainConfig config);
  const LocalTrainConfig& config() const { return m_config; }

  // Regularizers change every step from now on, in the order they were added.
  void add_regularizer(std::shared_ptr<Regularizer> regularizer);
  // Tells the regularizers that a party starts (before run()).
  void begin_party(const PartyStart& start);

  // One D update (d_steps times) and one G update on a real batch; returns (d_loss, g_loss).
  std::pair<double, double> step(models::Gan& gan, PartyOptimizers& opt,
                                 const data::Batch& batch, torch::Generator& gen);
  // The same step, its losses left as scalar tensors on the model's device (no host sync):
  // D's loss averaged over its d_steps, G's loss.
  std::pair<torch::Tensor, torch::Tensor> step_async(models::Gan& gan, PartyOptimizers& opt,
                                                     const data::Batch& batch,
                                                     torch::Generator& gen);

  // The probability of each augmentation per image (1: DiffAugment; ADA adapts it per round).
  void set_augment_probability(double p);

  // The party's local work for one round: local_epochs over its data (or local_steps).
  // `epoch_base` numbers the epochs so every (party, round, epoch) shuffles differently.
  // `interrupted` (optional) is asked before every step; when it answers true the party
  // stops at once and the result says so. `gen` must be a generator of the model's device.
  // On the CPU every step's losses are checked at once; on a GPU they are summed on the
  // device and read once at the end (a host read per step would stall the GPU's queue), so a
  // non-finite party there is found after its last step, not at its first bad one.
  // `steps` > 0: exactly that many steps instead of the config's (pacing: a round's steps
  // follow the party's speed).
  LocalResult run(models::Gan& gan, PartyOptimizers& opt, data::PartyData& data,
                  std::int64_t epoch_base, torch::Generator& gen,
                  const std::function<bool()>& interrupted = {}, std::int64_t steps = 0);

 private:
  void optimizer_step(Net net, models::Gan& gan, FlatAdam& opt);
  LocalTrainConfig m_config;
  std::unique_ptr<models::GanLoss> m_loss;
  std::vector<std::shared_ptr<Regularizer>> m_regularizers;
  bool m_g_features = false;  // a regularizer wants G's hidden activations
  double m_lr_factor = 1.0;
  double m_augment_p = 1.0;
  std::int64_t m_d_step_index = 0;  // D steps taken in this run() (lazy R1)
  torch::Tensor m_sign_sum;         // Σ sign(D(real)) on the device, read once per run()
  std::int64_t m_sign_count = 0;
  // D's logits on images, augmented first when a policy is set.
  torch::Tensor d_logits(models::Discriminator& d, const torch::Tensor& images,
                         const torch::Tensor& labels, torch::Generator& gen);
};

}  // namespace fedgan::train
