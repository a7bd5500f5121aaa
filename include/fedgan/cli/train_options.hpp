// TrainOptions: everything `fedgan train` (and `pretrain`) takes, as plain value types that
// the CLI fills; the run (cli/train_run.cpp) hands each module the struct it needs.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "fedgan/federated/federated_trainer.hpp"
#include "fedgan/models/model_config.hpp"
#include "fedgan/train/local_trainer.hpp"

namespace fedgan::cli {

struct TrainOptions {
  std::string data;                 // dataset file written by `fedgan prepare`
  std::string out = "runs/train";   // run directory
  bool conditional = false;         // label-conditional G and D (dataset needs labels)
  int parties_per_rank = 0;         // 0: all parties of the file, spread over the ranks
  int checkpoint_every = 5;
  int eval_every = 0;               // > 0: FID/KID/precision/recall every K rounds
  std::string evaluator;            // evaluator checkpoint (fedgan evaluator)
  std::int64_t eval_n = 2000;       // generated samples per evaluation
  int sample_every = 1;
  std::string resume = "no";              // no | yes | true | false | auto (resume when
                                          // checkpoints/latest.h5 exists); "" (alone) means yes
  std::vector<std::string> allow_change;  // run-defining settings a resume may change
  bool force = false;
  int debug_stop_round = -1;
  // Devices: where each rank computes, how a GPU buffer is summed, precision, determinism.
  std::string device = "auto";      // auto | cpu | cuda
  std::string comm = "auto";        // auto | mpi | nccl
  std::string precision = "fp32";   // fp32 | bf16 (CUDA autocast)
  bool deterministic = false;       // GPU: deterministic algorithms only
  std::string g_fake = "reuse";     // reuse | fresh: the G step's fake batch (scripts/step_variants.sh)
  // Transfer learning: warm start from a pretrained checkpoint (.h5) or PyTorch dict (.pt).
  std::string init;
  bool init_strict = false;
  std::string init_map;             // "gen.=generator.,disc.=discriminator."
  std::string lr_mult_g, lr_mult_d;  // "blocks.0=0.1,out=2"
  // Limited-data techniques (README "Small data"); the rest live in `local` and `federated`.
  std::string diffaug = "none";  // "translation,cutout,color"
  std::string lr_schedule = "constant";
  double g_ema = 0;  // β of the server-side generator EMA per round; 0: off
  models::ModelConfig model;
  train::LocalTrainConfig local;
  federated::FederatedConfig federated;
};

// Binds the options of `train` (and `pretrain`) to `options` on the subcommand `sub`.
void add_train_options(CLI::App& sub, TrainOptions& options);
void add_transfer_options(CLI::App& sub, TrainOptions& options);

// The training run on every rank; returns the process exit code.
int run_training(comm::Communicator& comm, const TrainOptions& options,
                 const std::string& config_text);

}  // namespace fedgan::cli
