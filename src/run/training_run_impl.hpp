// The private state of a TrainingRun, shared by its three files: training_run.cpp (the
// constructor, the round loop and its log), training_run_setup.cpp (data, trainer, DP, warm
// start, resume, EMA, evaluator) and training_run_outputs.cpp (checkpoints, sample grids,
// evaluation, the epsilon budget, preemption).
#pragma once

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "fedgan/comm/collective.hpp"
#include "fedgan/comm/tensor_map.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/core/log.hpp"
#include "fedgan/core/stop_signal.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/data/dataset_file.hpp"
#include "fedgan/data/random.hpp"
#include "fedgan/data/party_data.hpp"
#include "fedgan/data/shard_loader.hpp"
#include "fedgan/eval/evaluate.hpp"
#include "fedgan/eval/real_stats.hpp"
#include "fedgan/federated/distill/distill_trainer.hpp"
#include "fedgan/run/checkpoint_state.hpp"
#include "fedgan/run/generator_ema.hpp"
#include "fedgan/run/training_run.hpp"
#include "fedgan/io/atomic_file.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/io/hdf5.hpp"
#include "fedgan/io/image_grid.hpp"
#include "fedgan/io/run_directory.hpp"
#include "fedgan/privacy/clipping.hpp"
#include "fedgan/privacy/dp_fedavg.hpp"
#include "fedgan/privacy/secure_fedavg.hpp"
#include "fedgan/train/lr_schedule.hpp"
#include "fedgan/transfer/modulation.hpp"
#include "fedgan/transfer/warm_start.hpp"

namespace fedgan::run {
namespace run_detail {

// A metrics.csv cell.
inline std::string cell(double v, int precision = 6) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
  return buf;
}

}  // namespace run_detail

using run_detail::cell;
// The evaluation columns of metrics.csv, set by TrainingRun::Impl::evaluate.
inline const std::vector<std::string> kEvalColumns = {"fid_all",   "fid_avg", "kid",   "precision",
                                                      "recall",    "eval_n",  "eval_s"};
// The round's types, as the run's files name them.
using federated::FederatedConfig;
using federated::FederatedTrainer;
using federated::LocalParty;
using federated::RoundReport;

// The first setting --ewc-weight/--cdc-weight cannot honour; "" when none
// (training_run_source.cpp).
std::string source_settings_problem(const RunConfig& c, const models::ModelConfig& model);

struct TrainingRun::Impl {
  comm::Communicator& comm;
  RunConfig config;
  io::RunDirectory run;
  bool resume = false;
  RankDevice rank_device;
  int total_parties = 0, first_party = 0, last_party = 0;
  models::ModelConfig model;
  std::unique_ptr<FederatedTrainer> trainer;
  std::int64_t start_round = 0;
  // Rank 0: --init held every value of G (the anchor of EWC and cross-domain correspondence)
  // and of D (EWC's Fisher needs the source D).
  bool source_g_complete = false, source_d_complete = false;
  std::optional<eval::Evaluator> evaluator;
  std::unique_ptr<models::Gan> eval_cpu_copy;  // a GPU run's model, copied for the evaluator
  // The generator EMA (--g-ema) and a model holding it; the trained generator of a resumed
  // run whose /generator is an EMA.
  std::unique_ptr<GeneratorEma> ema;
  std::unique_ptr<models::Gan> ema_gan;
  torch::Tensor resumed_g_raw;
  eval::RealStats real_stats;
  io::MetricsCsv metrics;
  io::MetricsCsv party_times;  // party_times.csv: one row per party trained in a round
  io::MetricsCsv decisions;    // decisions.csv: the controller's (--auto)
  std::unique_ptr<privacy::DpFedAvg> dp;  // with --dp-clip
  std::int64_t last_checkpoint = -1;      // the round latest.h5 holds (this process's writes)
  // --federation distill: the round that trains trainer->global()'s G with the parties' own Ds
  // (training_run_distill.cpp); null under FedAvg.
  std::unique_ptr<federated::DistillTrainer> distill;
  // --modulation-rank: the filters whose modulation trains (int64 [filters], 0/1; checkpoints
  // keep it as /state/server/modulation_mask); undefined without modulation.
  torch::Tensor modulation_mask;

  Impl(comm::Communicator& c, RunConfig rc);

  bool resolve_resume();
  void prepare_directory();
  std::vector<LocalParty> load_parties();
  void load_model_scripts();
  federated::AggregatorFactory aggregator_factory() const;
  void make_trainer(std::vector<LocalParty> parties);
  void make_dp(const std::vector<LocalParty>& parties);
  void check_federation();
  void make_distill(const std::vector<LocalParty>& parties);
  // Kernel modulation (modulation_setup.cpp): the mask of trained filters into G's freeze plan.
  void plan_modulation(const std::vector<LocalParty>& parties);
  torch::Tensor probe_importance(const std::vector<LocalParty>& parties, models::Gan& source,
                                 const std::vector<models::ModulatedLayer>& layers);
  RoundReport run_round(std::int64_t round, const std::function<bool()>& interrupted);
  // This rank's parties' own state: the round's (kept Adam moments, local BN, SCAFFOLD) and,
  // under distillation, each party's discriminator.
  bool has_party_state() const { return trainer->has_party_state() || distill != nullptr; }
  std::map<std::string, torch::Tensor> own_party_state() const;
  bool budget_reached(std::int64_t round);
  io::CheckpointData checkpoint(std::int64_t round,
                                const std::map<std::string, torch::Tensor>& party_state);
  void warm_start();
  // KD, EWC and cross-domain correspondence against the warm start (training_run_source.cpp).
  void install_source_regularizers();
  void resume_from_checkpoint();
  void load_evaluator();
  void start_ema();
  void update_ema(std::int64_t round);
  // The model that sample grids, evaluation and checkpoints' /generator show.
  models::Gan& shown() { return ema_gan ? *ema_gan : trainer->global(); }
  void log_start();
  std::map<std::string, torch::Tensor> gather_party_state();
  RunOutcome preempted(std::int64_t round);
  void check_round(std::int64_t round, const RoundReport& r);
  void write_outputs(std::int64_t round);
  // Returns FID-all (the same on every rank), NaN when no evaluation was due.
  double evaluate(std::int64_t round, io::MetricsRow& row);
  // The controller (--auto) after the round's evaluation: its decisions into the log and
  // decisions.csv (rank 0).
  void adapt(std::int64_t round, const RoundReport& r, double fid);
  void log_round(std::int64_t round, const RoundReport& r, double wall, double eta,
                 io::MetricsRow& row);
};

}  // namespace fedgan::run
