// The training run (see include/fedgan/run/training_run.hpp): setup on every rank, then
// the rounds with rank 0's outputs. Every step that can fail on one rank is agreed. This file:
// the constructor, the round loop and its log; training_run_setup.cpp and
// training_run_outputs.cpp hold the rest of TrainingRun::Impl (training_run_impl.hpp).
#include <unistd.h>

#include "training_run_impl.hpp"

namespace fedgan::run {
namespace {

using Clock = std::chrono::steady_clock;
std::string hms(double s) {
  const long t = std::lround(std::max(0.0, s));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  return buf;
}

// On a terminal each round line starts with a progress bar; in a Slurm log (or any file) the
// lines stay plain, so they grep and parse.
std::string progress_bar(std::int64_t round, std::int64_t rounds) {
  static const bool tty = ::isatty(STDERR_FILENO) && !std::getenv("SLURM_JOB_ID");
  if (!tty) return "";
  constexpr int kWidth = 20;
  const int done = static_cast<int>(kWidth * round / std::max<std::int64_t>(1, rounds));
  return "[" + std::string(static_cast<std::size_t>(done), '#') +
         std::string(static_cast<std::size_t>(kWidth - done), '.') + "] ";
}

// The columns of metrics.csv, in order (docs/DESIGN.md, "File formats"); each row sets its cells
// by these names (io::MetricsRow) and MetricsCsv checks the row against them.
const std::vector<std::string> kRoundColumns = {
    "round",   "wall_s",  "local_train_s", "wait_s", "aggregate_s", "other_s",     "d_loss",
    "g_loss",  "parties", "skipped",       "samples", "images",     "images_per_s"};
// With --dp-clip: ε after the round (at the run's δ) and the clip norm the round used.
const std::vector<std::string> kDpColumns = {"epsilon", "dp_clip"};
// Pacing (--party-speed, --sim-step-seconds, --round-time-budget, --async-buffer): the round and
// the run so far on the simulated clock; asynchronous: the buffer's staleness.
const std::vector<std::string> kPacingColumns = {"sim_round_s", "sim_time_s"};
const std::vector<std::string> kAsyncColumns = {"staleness_mean", "staleness_max"};
// The controller (--auto): ‖mean update‖ and the steps rule's agreement signal.
const std::vector<std::string> kControllerColumns = {"mean_update_norm", "agreement"};
// ADA's probability after the round (empty without ADA) and the round's lr factor.
const std::vector<std::string> kLastColumns = {"ada_p", "lr_factor"};

std::vector<std::string> metrics_columns(const RunConfig& c) {
  auto columns = kRoundColumns;
  columns.insert(columns.end(), kEvalColumns.begin(), kEvalColumns.end());
  if (c.dp.enabled) columns.insert(columns.end(), kDpColumns.begin(), kDpColumns.end());
  const auto& pacing = c.federated.pacing;
  if (pacing.active())
    columns.insert(columns.end(), kPacingColumns.begin(), kPacingColumns.end());
  if (pacing.async()) columns.insert(columns.end(), kAsyncColumns.begin(), kAsyncColumns.end());
  if (!c.federated.controller.rules.empty())
    columns.insert(columns.end(), kControllerColumns.begin(), kControllerColumns.end());
  columns.insert(columns.end(), kLastColumns.begin(), kLastColumns.end());
  return columns;
}

// party_times.csv: each party's local training in each round. seconds is measured on its rank;
// speed and sim_step_s are the simulated clock's (speed 1 and the measured time per step when
// nothing is simulated); staleness is asynchronous aggregation's (0 in synchronous rounds).
const std::vector<std::string> kPartyColumns = {
    "round", "party", "steps", "seconds", "s_per_step", "speed", "sim_step_s", "sim_s",
    "staleness", "update_norm", "finite"};

}  // namespace

const ChoiceTable<Choice<ResumeMode>>& resume_modes() {
  static const Choice<ResumeMode> entries[] = {
      {ResumeMode::No, "no", ""},    {ResumeMode::Yes, "yes", ""},  {ResumeMode::Auto, "auto", ""},
      {ResumeMode::No, "false", ""}, {ResumeMode::Yes, "true", ""},
  };
  static const ChoiceTable<Choice<ResumeMode>> table(entries, "--resume", "resume mode");
  return table;
}

TrainingRun::Impl::Impl(comm::Communicator& c, RunConfig rc)
    : comm(c),
      config(std::move(rc)),
      run(config.out),
      metrics(run.metrics(), metrics_columns(config)),
      party_times(run.party_times(), kPartyColumns),
      decisions(run.decisions(), {"round", "rule", "signal", "action"}) {}

TrainingRun::TrainingRun(comm::Communicator& comm, RunConfig config)
    : m(std::make_unique<Impl>(comm, std::move(config))) {
  m->resume = m->resolve_resume();
  m->prepare_directory();
  install_stop_handlers();
  m->rank_device = resolve_rank_device(comm, m->config.device);
  const auto parties = m->load_parties();
  m->check_federation();
  m->plan_modulation(parties);
  m->make_trainer(parties);
  m->make_distill(parties);
  m->warm_start();
  if (m->resume) m->resume_from_checkpoint();
  // One source of truth for the starting model: rank 0's.
  m->trainer->broadcast_global(0);
  m->start_ema();
  m->load_evaluator();
  m->log_start();
}

TrainingRun::~TrainingRun() = default;

FederatedTrainer& TrainingRun::trainer() { return *m->trainer; }

// --resume auto: resume exactly when rank 0 finds a checkpoint (a requeued Slurm job).
bool TrainingRun::Impl::resolve_resume() {
  std::int64_t flag = config.resume == ResumeMode::Yes;
  if (config.resume == ResumeMode::Auto && comm.is_root())
    flag = std::filesystem::exists(run.latest_checkpoint()) ? 1 : 0;
  comm.broadcast(&flag, sizeof(flag), 0);
  return flag != 0;
}

// Rank 0 owns the run directory; everyone learns whether that worked.
void TrainingRun::Impl::prepare_directory() {
  comm::run_on_root(comm, [&] {
    run.prepare(resume, config.force || config.resume == ResumeMode::Auto);
    if (resume && !std::filesystem::exists(run.latest_checkpoint()))
      throw Error(run.latest_checkpoint() + ": --resume needs this checkpoint, and it is missing");
    // The run being continued must be this run: same data, seed, parties, model ... (its
    // settings are in the checkpoint's config attribute).
    if (resume && config.check_resume) {
      const h5::File latest(run.latest_checkpoint(), h5::File::Mode::Read);
      config.check_resume(run.latest_checkpoint(), latest.attr_string("/", "config").value_or(""));
    }
    log::add_file(run.log());
  });
}

void TrainingRun::Impl::log_start() {
  if (!comm.is_root()) return;
  spdlog::info("fedgan train: {} rank(s), {} parties ({}..{} on rank 0), model {}", comm.size(),
               total_parties, first_party, last_party - 1, model.to_string());
  if (!distill)  // (distillation logged its own traffic: make_distill)
    spdlog::info("  G {} + D {} values; {}: {}", trainer->global().g_flat().numel(),
                 trainer->global().d_flat().numel(), trainer->aggregator().name(),
                 trainer->aggregator().describe());
  const auto& attack = config.federated.attack;
  if (attack.active()) {
    std::string ids;
    for (int id : attack.attackers) ids += (ids.empty() ? "" : ",") + std::to_string(id);
    spdlog::warn("simulated attack: parties {} send {} updates (--attack, --attackers)", ids,
                 attack_name(attack));
  }
  if (resume) {
    spdlog::info("  resuming after round {} from {}", start_round, run.latest_checkpoint());
    metrics.load_existing(start_round);
    if (std::filesystem::exists(run.party_times())) party_times.load_existing(start_round);
    if (std::filesystem::exists(run.decisions())) decisions.load_existing(start_round);
  }
  const auto& pacing = config.federated.pacing;
  if (pacing.simulated())
    spdlog::warn("SIMULATION: party speeds {} on the simulated clock ({}); the sim_* columns "
                 "and party_times.csv's sim_* are simulated time, nothing sleeps",
                 pacing.speed.empty() ? std::string("all 1")
                                      : federated::format_party_speeds(pacing.speed),
                 pacing.step_seconds > 0
                     ? fmt::format("a factor-1 step takes {:g} s", pacing.step_seconds)
                     : std::string("a factor-1 step takes the party's measured time"));
  if (pacing.compute_aware())
    spdlog::info("compute-aware rounds: each party runs floor({:g} s / its step time) local steps",
                 pacing.round_time_budget);
  if (!config.federated.controller.rules.empty()) {
    std::string rules;
    for (auto rule : config.federated.controller.rules)
      rules += (rules.empty() ? "" : ", ") + federated::adapt::controller_rules().name(rule);
    spdlog::info("controller (--auto): rules {}; every decision is logged with its signal and "
                 "kept in decisions.csv",
                 rules);
  }
  if (pacing.async())
    spdlog::info("asynchronous aggregation (FedBuff replay): a server step every {} arrivals, "
                 "staleness weight {}; a round is one server step",
                 pacing.async_buffer, federated::staleness_rules().name(pacing.staleness));
  if (dp) {
    spdlog::info("DP: {}", dp->guarantee(config.federated.rounds));
    spdlog::info(
        "  (what {} rounds give; Poisson sampling of parties, {} noise, {} weighting, "
        "denominator {:g}{})",
        config.federated.rounds, privacy::to_string(config.dp.noise),
        privacy::to_string(config.dp.weighting), dp->plan().denominator,
        config.dp.epsilon_budget > 0
            ? fmt::format("; --epsilon-budget {:g} stops earlier if reached",
                          config.dp.epsilon_budget)
            : std::string());
  }
  // The settings of this invocation (a resume may change rounds, learning rates ...).
  io::write_text_atomically(run.config(), config.config_text);
}

RunOutcome TrainingRun::run() {
  auto& s = *m;
  const int rounds = s.config.federated.rounds;
  const auto t_start = Clock::now();
  double train_seconds = 0;
  for (std::int64_t round = s.start_round + 1; round <= rounds; ++round) {
    if (s.budget_reached(round)) break;
    const auto t0 = Clock::now();
    const double clip_used = s.dp ? s.dp->clip() : 0;
    const bool debug_stop = round == s.config.debug.stop_round;
    const RoundReport r = s.run_round(round, [&] { return debug_stop || stop_requested(); });
    if (r.interrupted) return s.preempted(round);
    s.check_round(round, r);
    s.update_ema(round);
    // Evaluated before the checkpoint, so the controller has observed the round when the
    // checkpoint keeps its state (a resumed run then decides as an uninterrupted one).
    io::MetricsRow row;
    const double fid = s.evaluate(round, row);
    s.adapt(round, r, fid);
    s.write_outputs(round);
    if (s.dp) {
      row.set("epsilon", cell(s.dp->spent().epsilon));
      row.set("dp_clip", cell(clip_used));
    }
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    train_seconds += wall;
    const double eta = train_seconds / static_cast<double>(round - s.start_round) *
                       static_cast<double>(rounds - round);
    s.log_round(round, r, wall, eta, row);
  }
  if (s.dp && s.comm.is_root()) spdlog::info("DP: {}", s.dp->guarantee(s.dp->rounds_accounted()));
  if (s.comm.is_root())
    spdlog::info("done in {}: checkpoint {}, samples {}",
                 hms(std::chrono::duration<double>(Clock::now() - t_start).count()),
                 s.run.latest_checkpoint(),
                 s.config.sample_every > 0 ? s.run.samples(rounds)
                                           : std::string("none (--sample-every 0)"));
  return RunOutcome::Finished;
}

// Collective verdicts on a finished round (every rank holds the same report and model).
void TrainingRun::Impl::check_round(std::int64_t round, const RoundReport& r) {
  // Every party of the round was dropped (--skip-nonfinite): the model cannot move, and
  // going on would log zero losses and save an unchanged model as if trained.
  // (Under DP a Poisson draw may pick no party at all: that round applies its noise alone;
  // a round that secure aggregation abandoned is handled by the round itself.)
  if (r.parties == 0 && r.skipped > 0 && r.abandoned.empty())
    throw Error("round " + std::to_string(round) + ": every participating party (" +
                    std::to_string(r.skipped) +
                    ") produced a non-finite update and was "
                    "skipped (--skip-nonfinite), so the global model cannot change; stopping "
                    "(nothing was written for this round). Lower --lr-g/--lr-d, or resume "
                    "from an earlier checkpoint",
                /*collective=*/true);
  // A model left unusable by the server step never gets here: the round checks it
  // (federated/round/model_guard.hpp) and stops every rank before anything is written.
}

// Rank 0: the metrics row and the round's log line.
void TrainingRun::Impl::log_round(std::int64_t round, const RoundReport& r, double wall, double eta,
                                  io::MetricsRow& row) {
  if (!comm.is_root()) return;
  const int rounds = config.federated.rounds;
  const double other = std::max(0.0, wall - r.own_local_s - r.wait_s - r.aggregate_s);
  const double ips = static_cast<double>(r.images) / std::max(1e-9, r.local_s) / comm.size();
  row.set("round", std::to_string(round))
      .set("wall_s", cell(wall))
      .set("local_train_s", cell(r.local_s))
      .set("wait_s", cell(r.wait_s))
      .set("aggregate_s", cell(r.aggregate_s))
      .set("other_s", cell(other))
      .set("d_loss", cell(r.d_loss))
      .set("g_loss", cell(r.g_loss))
      .set("parties", std::to_string(r.parties))
      .set("skipped", std::to_string(r.skipped))
      .set("samples", std::to_string(r.samples))
      .set("images", std::to_string(r.images))
      .set("images_per_s", cell(ips))
      .set("ada_p", config.federated.ada.target > 0 ? cell(r.ada_p) : "")
      .set("lr_factor", cell(train::lr_factor(config.local.lr_schedule, static_cast<int>(round),
                                              config.local.schedule_rounds,
                                              config.local.lr_final_ratio)));
  const auto& pacing = config.federated.pacing;
  if (pacing.active())
    row.set("sim_round_s", cell(r.sim_s)).set("sim_time_s", cell(r.sim_time_s));
  std::string staleness;
  if (pacing.async()) {
    double sum = 0;
    std::int64_t most = 0;
    for (const auto& t : r.party_times) {
      sum += static_cast<double>(t.staleness);
      most = std::max(most, t.staleness);
    }
    const double mean = r.party_times.empty() ? 0 : sum / static_cast<double>(r.party_times.size());
    row.set("staleness_mean", cell(mean)).set("staleness_max", std::to_string(most));
    staleness = fmt::format(" | staleness mean {:.2f} max {}", mean, most);
  }
  if (!config.federated.controller.rules.empty()) {
    double sum = 0, n = 0;
    for (const auto& t : r.party_times)
      if (t.finite) sum += t.update_norm, n += 1;
    const double mean = n > 0 ? sum / n : 0;
    row.set("mean_update_norm", cell(r.mean_update_norm))
        .set("agreement", mean > 0 ? cell(r.mean_update_norm / mean) : "");
  }
  metrics.append(row);
  for (const auto& t : r.party_times) {
    io::MetricsRow p;
    p.set("round", std::to_string(round))
        .set("party", std::to_string(t.party))
        .set("steps", std::to_string(t.steps))
        .set("seconds", cell(t.seconds))
        .set("s_per_step", cell(t.steps > 0 ? t.seconds / static_cast<double>(t.steps) : 0))
        .set("speed", cell(pacing.speed_of(t.party)))
        .set("sim_step_s", cell(t.step_seconds))
        .set("sim_s", cell(t.step_seconds * static_cast<double>(t.steps)))
        .set("staleness", std::to_string(t.staleness))
        .set("update_norm", cell(t.update_norm))
        .set("finite", t.finite ? "1" : "0");
    party_times.append(p);
  }
  if (pacing.active()) {
    std::string steps;
    for (const auto& t : r.party_times)
      steps += fmt::format("{}{}:{}", steps.empty() ? "" : " ", t.party, t.steps);
    spdlog::info("  SIMULATED clock: round {:.2f}s, total {:.1f}s | steps {}{}", r.sim_s,
                 r.sim_time_s, steps, staleness);
  }
  spdlog::info(
      "{}round {}/{} | D {:.4f} G {:.4f} | parties {}{} | local {:.2f}s agg {:.4f}s "
      "other {:.3f}s | {:.0f} img/s/rank | ETA {}{}",
      progress_bar(round, rounds), round, rounds, r.d_loss, r.g_loss, r.parties,
      r.skipped ? " (" + std::to_string(r.skipped) + " skipped)" : std::string(), r.local_s,
      r.aggregate_s, other, ips, hms(eta),
      dp ? fmt::format(" | epsilon {:.4g}", dp->spent().epsilon) : std::string());
}

}  // namespace fedgan::run
