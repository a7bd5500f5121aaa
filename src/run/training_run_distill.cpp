// TrainingRun's federated distillation (--federation distill; see training_run_impl.hpp and
// docs/DESIGN.md, "Federated distillation"): the settings it refuses, the parties' TorchScript
// discriminators read on rank 0, the DistillTrainer, the traffic it would cause, and the round
// the run loop calls.
#include "training_run_impl.hpp"

namespace fedgan::run {
namespace {

std::string mib(std::int64_t bytes) {
  return fmt::format("{:.3f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

// The first setting --federation distill cannot honour, with the reason; "" when none.
std::string distill_settings_problem(const RunConfig& c) {
  const auto& f = c.federated;
  const auto& l = c.local;
  const std::string no = "--federation distill: ";
  if (f.pacing.active() || !f.controller.rules.empty())
    return no + "--party-speed, --sim-step-seconds, --round-time-budget, --async-buffer and "
                "--auto are refused: they pace FedAvg's model updates, and distillation's rounds are "
                "one shared batch of feedback per generator step";
  if (c.dp.enabled)
    return no +
           "--dp-clip is refused: DP-FedAvg clips and noises model updates, and its "
           "account covers those; distillation sends discriminator feedback instead";
  if (c.secure_agg.enabled)
    return no +
           "--secure-agg is refused: UA-GAN's combination needs every party's logits "
           "in the clear (a softmax over parties), not only a sum";
  if (f.aggregator.rule != federated::AggregationRule::FedAvg &&
      f.aggregator.rule != federated::AggregationRule::NormBound)
    return no + "--aggregator " + federated::to_string(f.aggregator.rule) +
           " is refused: median, trimmed mean and Krum pick or combine model updates "
           "coordinate by coordinate; the feedback is combined by UA-GAN's odds rule (--aggregator "
           "fedavg), optionally with each party's feedback bounded to the median norm "
           "(--aggregator norm-bound)";
  if (f.client.strategy != federated::ClientStrategy::FedAvg || f.client.prox_mu > 0)
    return no + "client strategies (--client-strategy " + federated::to_string(f.client.strategy) +
           ", --prox-mu) are refused: they correct local model drift, and no party trains a "
           "copy of the global model here";
  if (f.server.kind != federated::ServerOptimizerKind::FedAvg || f.server.lr != 1.0)
    return no +
           "--server-optimizer/--server-lr are refused: G takes Adam steps (--lr-g) on the "
           "aggregated feedback; there is no server step over model updates";
  if (l.loss != models::LossKind::Bce)
    return no + "--loss " + models::to_string(l.loss) +
           " is refused: UA-GAN combines the parties' odds D/(1-D) = exp(logit), which only "
           "BCE's logits are (--loss bce)";
  if (l.local_steps <= 0)
    return no +
           "needs --local-steps N > 0: the parties step in lockstep with the one "
           "generator (epochs differ between parties)";
  if (l.d_steps != 1) return no + "--d-steps other than 1 is not implemented";
  if (l.augment.any() || f.ada.target > 0 || l.r1_gamma > 0)
    return no +
           "--diffaug, --ada-target and --r1-gamma are not implemented for the parties' "
           "discriminators";
  if (l.kd_weight > 0) return no + "--kd-weight is not implemented (G's loss is UA-GAN's)";
  if (c.conditional)
    return no +
           "--conditional is refused: the generated batch is shared by every party, "
           "whose labels differ";
  if (f.local_bn)
    return no +
           "--local-bn is refused: each party's D and its statistics are its own already, "
           "and G has one copy";
  if (f.freeze_g.freeze_blocks > 0 || f.freeze_d.freeze_blocks > 0 ||
      !f.freeze_g.train_only.empty() || !f.freeze_g.lr_mult.empty() || !f.freeze_d.lr_mult.empty())
    return no + "--freeze-g/--freeze-d/--train-only/--lr-mult-* are not implemented";
  if (f.attack.active() && f.attack.kind != federated::AttackSpec::Kind::SignFlip &&
      f.attack.kind != federated::AttackSpec::Kind::Scale)
    return no + "--attack " + federated::attack_name(f.attack) +
           " is refused: a hostile party's feedback can be sign-flip or scale:K";
  if (f.skip_nonfinite)
    return no + "--skip-nonfinite is refused: every party's feedback is part of every step";
  if (c.debug.nan_party >= 0) return no + "--debug-nan-party is refused (a FedAvg test hook)";
  if (c.device.bf16) return no + "--precision bf16 is not implemented";
  return "";
}

}  // namespace

// Refusals, before anything is built: the same verdict on every rank.
void TrainingRun::Impl::check_federation() {
  if (config.federation == federated::Federation::FedAvg) {
    comm.agree_ok(config.party_discriminators.empty(),
                  "--party-discriminators gives each party its own discriminator: it needs "
                  "--federation distill");
    comm.agree_ok(config.feedback_combine == federated::FeedbackCombine::Ua,
                  "--feedback-combine says how the parties' discriminator feedback is combined: it "
                  "needs --federation distill");
    return;
  }
  const std::string problem = distill_settings_problem(config);
  comm.agree_ok(problem.empty(), problem);
}

void TrainingRun::Impl::make_distill(const std::vector<LocalParty>& parties) {
  if (config.federation != federated::Federation::Distill) return;
  federated::DistillConfig dc;
  dc.discriminators = config.party_discriminators;
  dc.combine = config.feedback_combine;
  dc.script_archives.resize(dc.discriminators.size());
  comm::run_on_root(comm, [&] {
    for (std::size_t i = 0; i < dc.discriminators.size(); ++i)
      if (!dc.discriminators[i].script.empty())
        dc.script_archives[i] =
            io::read_file(dc.discriminators[i].script,
                          "--party-discriminators entry '" + dc.discriminators[i].text + "'",
                          "a TorchScript discriminator from torch.jit.script(D).save(path)");
  });
  for (auto& archive : dc.script_archives) comm.broadcast(archive, 0);
  FederatedConfig fed = config.federated;
  fed.device = rank_device.device;
  comm::Communicator& round_comm = rank_device.round_comm(comm);
  distill = comm::collective_try(comm, [&] {
    return std::make_unique<federated::DistillTrainer>(round_comm, trainer->global(), config.local,
                                                       fed, dc, parties, total_parties);
  });
  // The log: each party's D (gathered from the ranks hosting them) and the traffic.
  std::string mine;
  for (const auto& d : distill->discriminators())
    mine += fmt::format("  party {}: D {} ({} values)\n", d->party, d->spec, d->flat.numel());
  const auto lines = comm.allgather(mine);
  if (!comm.is_root()) return;
  const auto values = trainer->global().g_flat().numel() + trainer->global().d_flat().numel();
  const auto t = distill->traffic(values);
  spdlog::info(
      "federated distillation ({}): one G of {} values on every rank; each party "
      "keeps its own D:",
      dc.combine == federated::FeedbackCombine::Ua ? "UA-GAN" : "MD-GAN's mean feedback",
      trainer->global().g_flat().numel());
  for (const auto& part : lines)
    for (std::size_t a = 0, b; a < part.size(); a = b + 1) {
      b = part.find('\n', a);
      if (b > a) spdlog::info("{}", part.substr(a, b - a));
    }
  spdlog::info(
      "  bytes per party per round (a deployment with G on a server): {} down ({} steps x ({} "
      "images x {} values + {} cotangents) x 4 B) + {} up ({} logits + {} x {} feedback "
      "values per step) = {}; FedAvg moves 2 x {} values x 4 B = {} (x{:.2f})",
      mib(t.down), t.steps, t.batch, t.image_values, t.batch, mib(t.up), t.batch, t.batch,
      t.image_values, mib(t.down + t.up), values, mib(t.fedavg),
      static_cast<double>(t.down + t.up) /
          static_cast<double>(std::max<std::int64_t>(1, t.fedavg)));
}

RoundReport TrainingRun::Impl::run_round(std::int64_t round,
                                         const std::function<bool()>& interrupted) {
  if (distill) return distill->run_round(static_cast<int>(round), interrupted);
  return trainer->run_round(static_cast<int>(round), interrupted);
}

std::map<std::string, torch::Tensor> TrainingRun::Impl::own_party_state() const {
  auto out = trainer->party_state_tensors();
  if (distill)
    for (auto& [k, v] : distill->party_state_tensors()) out[k] = v;
  return out;
}

}  // namespace fedgan::run
