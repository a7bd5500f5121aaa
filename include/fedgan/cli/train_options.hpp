// TrainOptions: everything `fedgan train` (and `pretrain`) takes. Options whose text is part
// of the run's config.toml are bound as given and checked by CLI11 validators; to_run_config
// turns them into the typed run::RunConfig the library gets (enums, parsed lists).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/run/training_run.hpp"

namespace fedgan::cli {

struct TrainOptions {
  run::RunConfig run;  // the typed settings (most options are bound straight into it)
  // As given on the command line or in the config file; each named choice is one of its table's
  // names (core/choice.hpp), parsed by to_run_config. Defaults are the typed defaults' names
  // unless the CLI's differ.
  std::string resume = run::resume_modes().name(run.resume);  // "" (alone) = yes
  std::vector<std::string> allow_change;  // run-defining settings a resume may change
  std::string optimizer_state = federated::optimizer_states().name(run.federated.optimizer_state);
  std::string loss = models::to_string(run.local.loss);
  std::string server_optimizer = federated::to_string(run.federated.server.kind);
  std::string client_strategy = federated::to_string(run.federated.client.strategy);
  std::string aggregator = federated::to_string(run.federated.aggregator.rule);
  std::string d_norm = models::to_string(run.model.d_norm);
  std::string device = to_string(run.device.device);
  std::string comm = to_string(run.device.comm);
  std::string precision = precisions().name(run.device.bf16 ? Precision::Bf16 : Precision::Fp32);
  std::string g_fake = train::g_fake_choices().name(true);  // reuse (the library's default: fresh)
  std::string init_map;                   // "gen.=generator.,disc.=discriminator."
  std::string lr_mult_g, lr_mult_d;       // "blocks.0=0.1,out=2"
  std::vector<std::string> train_only;    // one list of globs for G and D
  std::string diffaug = run.local.augment.to_string();  // "translation,cutout,color"
  std::string lr_schedule = train::to_string(run.local.lr_schedule);
  std::string attack = federated::attack_name(run.federated.attack);  // "scale:10"
  std::string attackers;                  // "0,3"
  // Client-level DP (`train` only); the numbers are bound into run.dp.
  std::string dp_clip = "off";            // off | C > 0
  std::string dp_noise = privacy::to_string(run.dp.noise);
  std::string dp_weighting = privacy::to_string(run.dp.weighting);
  std::vector<std::string> secagg_drop;   // "PARTY@ROUND" (--secagg-drop)
  // Width-heterogeneous parties.
  std::string width_ratios;  // "1,0.5,0.25" (federated::parse_width_ratios); "" none
  std::string width_bn = federated::width_bns().name(run.federated.widths.bn);
  std::string width_scaler = run.federated.widths.scaler ? "on" : "off";
  std::string width_average = federated::width_averages().name(run.federated.widths.average);
  std::string width_slicing = federated::width_slicings().name(run.federated.widths.slicing);
  // Federated distillation (`train` only; src/cli/federation_options.cpp).
  std::string federation = federated::federations().name(run.federation);
  std::string party_discriminators;       // "dw=32,dn=batch;script:D.pt"
  std::string feedback_combine = federated::feedback_combines().name(run.feedback_combine);
  // Pacing (src/cli/pacing_options.cpp).
  std::string party_speed;  // "0=4,3=inf" (federated::parse_party_speeds); "" none
  std::string staleness = federated::staleness_rules().name(run.federated.pacing.staleness);
  std::string async_weighting =
      federated::arrival_weightings().name(run.federated.pacing.weighting);
  std::string auto_rules = "off";  // --auto: all | off | quarantine,steps,server-lr,participation
};

// Binds the options of `train` (and `pretrain`) to `options` on the subcommand `sub`.
void add_train_options(CLI::App& sub, TrainOptions& options);
void add_transfer_options(CLI::App& sub, TrainOptions& options);
// --dp-* and --epsilon-budget (src/cli/dp_options.cpp).
void add_dp_options(CLI::App& sub, TrainOptions& options);
// The typed DP settings; a --dp-* option without --dp-clip is a (collective) error.
privacy::DpConfig to_dp_config(const TrainOptions& options);
// --federation and --party-discriminators (src/cli/federation_options.cpp); the list's entries
// are separated by ';' (an entry holds commas: dw=32,dn=batch).
void add_federation_options(CLI::App& sub, TrainOptions& options);
// --party-speed, --sim-step-seconds, --round-time-budget, --async-buffer, --staleness
// (src/cli/pacing_options.cpp).
void add_pacing_options(CLI::App& sub, TrainOptions& options);
std::vector<federated::DiscriminatorSpec> parse_party_discriminators(const std::string& text);

// The typed run configuration of validated options; `config_text` is the effective config.
run::RunConfig to_run_config(const TrainOptions& options, const std::string& config_text);

// The training run on every rank; returns the process exit code.
int run_training(comm::Communicator& comm, const TrainOptions& options,
                 const std::string& config_text);

}  // namespace fedgan::cli
