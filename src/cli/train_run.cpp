// `fedgan train` / `pretrain` after parsing: validated options become a typed RunConfig, and a
// run::TrainingRun does the run (docs/DESIGN.md, "Life of a run").
#include "fedgan/cli/app.hpp"
#include "fedgan/cli/run_settings.hpp"
#include "fedgan/cli/train_options.hpp"
#include "fedgan/privacy/secagg_config.hpp"
#include "fedgan/comm/collective.hpp"
#include "fedgan/federated/attacks/attack.hpp"
#include "fedgan/transfer/freeze_policy.hpp"
#include "fedgan/transfer/warm_start.hpp"

#include <algorithm>

namespace fedgan::cli {

static_assert(kPreempted == run::kPreemptedExitCode, "one preemption exit code");

run::RunConfig to_run_config(const TrainOptions& o, const std::string& config_text) {
  run::RunConfig c = o.run;
  c.config_text = config_text;
  // `--resume` alone arrives as an empty value.
  c.resume = o.resume.empty() ? run::ResumeMode::Yes : run::resume_modes().parse(o.resume).value;
  const auto allowed = o.allow_change;
  c.check_resume = [allowed, config_text](const std::string& checkpoint, const std::string& saved) {
    check_resume_settings(checkpoint, saved, config_text, allowed);
  };
  // Each named choice is parsed here, once, from its table.
  c.federated.optimizer_state = federated::optimizer_states().parse(o.optimizer_state).value;
  c.local.loss = models::parse_loss(o.loss);
  c.federated.server.kind = federated::parse_server_optimizer(o.server_optimizer);
  c.federated.client.strategy = federated::parse_client_strategy(o.client_strategy);
  c.federated.aggregator.rule = federated::parse_aggregation_rule(o.aggregator);
  c.width_ratios = federated::parse_width_ratios(o.width_ratios, "--width-ratios");
  c.federated.widths.bn = federated::width_bns().parse(o.width_bn).value;
  c.federated.widths.scaler = o.width_scaler == "on";
  c.federated.widths.slicing = federated::width_slicings().parse(o.width_slicing).value;
  c.federated.widths.average = federated::width_averages().parse(o.width_average).value;
  c.model.d_norm = models::d_norms().parse(o.d_norm).value;
  c.device.device = parse_device_kind(o.device);
  c.device.comm = parse_comm_kind(o.comm);
  c.device.bf16 = precisions().parse(o.precision).value == Precision::Bf16;
  c.local.autocast_bf16 = c.device.bf16;
  c.local.reuse_fake = train::g_fake_choices().parse(o.g_fake).value;
  c.local.augment = train::AugmentPolicy::parse(o.diffaug);
  c.local.lr_schedule = train::parse_lr_schedule(o.lr_schedule);
  c.local.schedule_rounds = c.federated.rounds;
  c.init.prefix_map = transfer::parse_prefix_map(o.init_map);
  c.federated.freeze_g.lr_mult = transfer::parse_lr_mult(o.lr_mult_g, "--lr-mult-g");
  c.federated.freeze_d.lr_mult = transfer::parse_lr_mult(o.lr_mult_d, "--lr-mult-d");
  // One list of globs for G and D (an empty entry, as a written config.toml holds, is none).
  auto globs = o.train_only;
  globs.erase(std::remove(globs.begin(), globs.end(), std::string()), globs.end());
  c.federated.freeze_g.train_only = globs;
  c.federated.freeze_d.train_only = globs;
  c.federated.attack = federated::parse_attack(o.attack, o.attackers);
  c.dp = to_dp_config(o);
  c.federation = federated::federations().parse(o.federation).value;
  c.party_discriminators = parse_party_discriminators(o.party_discriminators);
  c.feedback_combine = federated::feedback_combines().parse(o.feedback_combine).value;
  c.federated.pacing.speed = federated::parse_party_speeds(o.party_speed);
  c.federated.pacing.staleness = federated::staleness_rules().parse(o.staleness).value;
  c.federated.pacing.weighting = federated::arrival_weightings().parse(o.async_weighting).value;
  c.federated.controller = federated::adapt::parse_controller_rules(o.auto_rules);
  c.secure_agg.dp = privacy::secagg_dp_bound(c.dp);  // the range DP implies
  for (const auto& drop : o.secagg_drop)
    if (!drop.empty()) c.secure_agg.drops.push_back(privacy::parse_secagg_drop(drop));
  return c;
}

int run_training(comm::Communicator& comm, const TrainOptions& options,
                 const std::string& config_text) {
  // Every rank converts the same options: an error (e.g. --attack without --attackers) is
  // agreed, not one rank's.
  auto config = comm::collective_try(comm, [&] { return to_run_config(options, config_text); });
  run::TrainingRun run(comm, std::move(config));
  return run.run() == run::RunOutcome::Preempted ? kPreempted : kOk;
}

}  // namespace fedgan::cli
