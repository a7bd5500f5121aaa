// TrainingRun: one `fedgan train` (or `pretrain`) run on every rank — the run directory and
// resume, the data shards, warm start, the round loop, and rank 0's outputs (metrics row,
// sample grids, checkpoints, evaluation, ETA), with preemption (SIGUSR1/SIGTERM → checkpoint
// of the last complete round). Every step that can fail on one rank is agreed, so no rank
// hangs. The CLI fills a RunConfig and calls run(); this is where the modules meet.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/core/choice.hpp"
#include "fedgan/federated/distill/distill_config.hpp"
#include "fedgan/federated/round/debug_hooks.hpp"
#include "fedgan/federated/round/federated_trainer.hpp"
#include "fedgan/models/model_config.hpp"
#include "fedgan/privacy/dp_config.hpp"
#include "fedgan/privacy/secagg_config.hpp"
#include "fedgan/run/rank_device.hpp"
#include "fedgan/train/local_trainer.hpp"
#include "fedgan/transfer/ewc.hpp"
#include "fedgan/transfer/modulation.hpp"

namespace fedgan::run {

// --resume: no (refuse a directory holding a run unless --force), yes (continue from
// checkpoints/latest.h5, which must exist), auto (continue when it exists, else start over);
// false and true are no and yes.
enum class ResumeMode { No, Yes, Auto };
const ChoiceTable<Choice<ResumeMode>>& resume_modes();

struct WarmStartOptions {
  std::string path;  // pretrained checkpoint (.h5) or PyTorch dict (.pt); empty: none
  bool strict = false;
  std::vector<std::pair<std::string, std::string>> prefix_map;  // .pt key renames
};

struct RunConfig {
  std::string data;                // dataset file from `fedgan prepare`
  std::string out = "runs/train";  // run directory
  bool conditional = false;        // label-conditional G and D (dataset needs labels)
  int parties_per_rank = 0;        // 0: all parties of the file, spread over the ranks
  int checkpoint_every = 5;
  int sample_every = 1;            // > 0: a sample grid every K rounds and the last; 0: never
  int eval_every = 0;              // > 0: FID/KID/precision/recall every K rounds
  std::string evaluator;           // evaluator file (fedgan evaluator)
  std::string eval_data;           // real images of the evaluation (empty: `data`)
  std::int64_t eval_n = 2000;      // generated samples per evaluation
  ResumeMode resume = ResumeMode::No;
  bool force = false;
  // The run's effective settings as config text: written to OUT/config.toml and into every
  // checkpoint's `config` attribute.
  std::string config_text;
  // With resume: checks the resumed run's settings (the checkpoint's config text) against this
  // run's; throws fedgan::Error naming `checkpoint` and each difference. Unset: no check.
  std::function<void(const std::string& checkpoint, const std::string& saved_config)>
      check_resume;
  WarmStartOptions init;
  // Fine-tuning held to the warm start (transfer/ewc, transfer/cdc; --kd-weight is in `local`):
  // EWC's λ and Fisher sample count, cross-domain correspondence's λ (0: off).
  transfer::EwcConfig ewc;
  double cdc_weight = 0;
  // AdAM's kernel modulation (model.g_mod_rank > 0): keep fraction, probe steps, mask file.
  transfer::ModulationConfig modulation;
  DeviceOptions device;
  models::ModelConfig model;  // channels, image size and classes come from the data
  // --model torchscript: the archives rank 0 reads (--generator, --discriminator). On resume
  // they may be left out: the checkpoint's /scripts hold them.
  std::string generator_script, discriminator_script;
  train::LocalTrainConfig local;
  federated::FederatedConfig federated;
  // --width-ratios: ratios assigned to parties in turn (party k gets entry k mod size); empty:
  // the dataset file's /parties/<k>@width_ratio if it has them, else every party full width.
  // The run fills federated.widths.party_ratio from it.
  std::vector<double> width_ratios;
  // β of the server-side generator EMA per round (generator_ema.hpp); 0: none. With one, sample
  // grids, evaluation and checkpoints' /generator show the EMA.
  double g_ema = 0;
  privacy::DpConfig dp;  // client-level DP-FedAvg (dp.enabled: --dp-clip given)
  privacy::SecureAggConfig secure_agg;  // --secure-agg: FedAvg over masked updates
  federated::DebugHooks debug;
  // --federation distill: one global G, each party its own D (federated/distill), party k's
  // spec being party_discriminators[k mod size] (empty: the run's D for every party).
  federated::Federation federation = federated::Federation::FedAvg;
  std::vector<federated::DiscriminatorSpec> party_discriminators;
  federated::FeedbackCombine feedback_combine = federated::FeedbackCombine::Ua;
};

enum class RunOutcome { Finished, Preempted };
// The exit code of a preempted run (cli::kPreempted), named in the log.
inline constexpr int kPreemptedExitCode = 3;

class TrainingRun {
 public:
  // Collective: prepares the run directory, devices, shards, the trainer, warm start, resume
  // and the evaluator on every rank.
  TrainingRun(comm::Communicator& comm, RunConfig config);
  ~TrainingRun();
  // Collective: the rounds. Preempted: latest.h5 holds the last complete round.
  RunOutcome run();

  federated::FederatedTrainer& trainer();

 private:
  struct Impl;
  std::unique_ptr<Impl> m;
};

}  // namespace fedgan::run
