// TrainingRun's outputs (see training_run_impl.hpp): checkpoints (with the parties' state and
// the DP account), sample grids, evaluation, the EMA update, the epsilon budget and the
// checkpoint on preemption. Rank 0 writes; a failure there stops every rank.
#include "training_run_impl.hpp"

namespace fedgan::run {
namespace {

// The fixed latent vectors (drawn on the CPU, so every device shows the same z), on the CPU.
torch::Tensor sample_images(models::Gan& gan, std::uint64_t seed, int n) {
  auto gen = compat::make_cpu_generator(data::derive_seed(seed, 0x5a3b1e5));
  auto z = torch::randn({n, gan.config().latent_dim}, gen).to(gan.device());
  torch::Tensor labels;
  if (gan.config().num_classes > 0)
    labels = (torch::arange(n, torch::kInt64) % gan.config().num_classes).to(gan.device());
  torch::NoGradGuard no_grad;
  gan.generator().eval();
  auto images = gan.generator().forward(z, labels).to(torch::kCPU);
  gan.generator().train();
  return images;
}

}  // namespace

// A checkpoint of the run: model, server and party state, and the DP account.
io::CheckpointData TrainingRun::Impl::checkpoint(
    std::int64_t round, const std::map<std::string, torch::Tensor>& party_state) {
  auto ck = make_checkpoint(*trainer, round, config.config_text, party_state, ema_gan.get());
  if (distill)
    for (auto& [k, v] : distill->server_state()) ck.state[io::keys::kServer + k] = v;
  if (dp)
    for (auto& [k, v] : dp->state()) ck.state[k] = v;
  if (modulation_mask.defined())
    ck.state[std::string(io::keys::kServer) + io::keys::kModulationMask] = modulation_mask;
  return ck;
}

// --epsilon-budget: true when round `round` would take ε above the budget; the run then ends
// with round − 1 in latest.h5. A budget that allows no round at all is an error.
bool TrainingRun::Impl::budget_reached(std::int64_t round) {
  if (!dp || !dp->next_round_exceeds_budget()) return false;
  const double budget = config.dp.epsilon_budget;
  const auto now = dp->spent(), next = dp->spent_after(1);
  if (round == start_round + 1)
    throw Error(fmt::format("--epsilon-budget {:g}: {}; round {} would make epsilon {:.4g} "
                            "(delta {:g}). Raise the budget, or the noise of a new run",
                            budget,
                            resume ? fmt::format("already spent: the resumed run is at epsilon "
                                                 "{:.4g} after round {}",
                                                 now.epsilon, start_round)
                                   : std::string("below the epsilon of a single round"),
                            round, next.epsilon, dp->plan().delta),
                /*collective=*/true);
  if (last_checkpoint != round - 1) {
    const auto party_state = gather_party_state();
    comm::run_on_root(comm, [&] {
      const auto ck = checkpoint(round - 1, party_state);
      io::write_checkpoint(run.checkpoint(round - 1), ck);
      io::write_checkpoint(run.latest_checkpoint(), ck);
    });
    last_checkpoint = round - 1;
  }
  if (comm.is_root())
    spdlog::warn(
        "--epsilon-budget {:g}: round {} would take epsilon from {:.4g} to {:.4g}; "
        "stopped after round {} ({} holds it)",
        budget, round, now.epsilon, next.epsilon, round - 1, run.latest_checkpoint());
  return true;
}

// After a round's server step: every rank averages its (identical) global generator.
void TrainingRun::Impl::update_ema(std::int64_t round) {
  if (!ema) return;
  ema->update(trainer->global().g_flat().flat(), static_cast<int>(round));
  torch::NoGradGuard no_grad;
  ema_gan->g_flat().flat().copy_(ema->values());
}

// Every rank's party state, on rank 0 (one broadcast per rank; empty when nothing is kept).
std::map<std::string, torch::Tensor> TrainingRun::Impl::gather_party_state() {
  std::map<std::string, torch::Tensor> all;
  if (!has_party_state()) return all;
  for (int r = 0; r < comm.size(); ++r) {
    auto part = comm.rank() == r ? own_party_state() : std::map<std::string, torch::Tensor>{};
    comm::broadcast_tensors(comm, part, r);
    if (comm.is_root()) all.insert(part.begin(), part.end());
  }
  return all;
}

// Preemption: keep the last complete round (round - 1) and leave with a distinct code. The
// parties' own state (restored to the end of round - 1) goes with it, so a resume with kept
// Adam moments or local BN statistics is exact too.
RunOutcome TrainingRun::Impl::preempted(std::int64_t round) {
  const bool write = round - 1 > start_round;
  const auto party_state = write ? gather_party_state() : std::map<std::string, torch::Tensor>{};
  comm::run_on_root(comm, [&] {
    if (write) io::write_checkpoint(run.latest_checkpoint(), checkpoint(round - 1, party_state));
  });
  // The signal may have reached one rank only: learn which signal, the first rank that got
  // it, and whether it came from mpirun aborting the job.
  struct Seen {
    std::int64_t signal = 0;
    std::int64_t first_rank_mirror = 0;  // size − the lowest rank that got it: max = lowest
    std::int64_t from_mpirun = 0;
  } seen;
  static constexpr std::int64_t Seen::*const kFields[] = {&Seen::signal, &Seen::first_rank_mirror,
                                                          &Seen::from_mpirun};
  seen.signal = stop_signal();
  seen.first_rank_mirror = stop_signal() ? comm.size() - comm.rank() : 0;
  seen.from_mpirun = term_from_open_mpi_launcher() ? 1 : 0;
  comm::allreduce_max_fields(comm, seen, kFields);
  if (comm.is_root())
    spdlog::warn(
        "{}: stopped in round {}; {} holds round {}; continue with --resume. "
        "fedgan exits with code {}{}",
        round == config.debug.stop_round && seen.signal == 0
            ? std::string("--debug-stop-round")
            : describe_stop_signal(static_cast<int>(seen.signal),
                                   comm.size() - static_cast<int>(seen.first_rank_mirror),
                                   comm.size()),
        round, run.latest_checkpoint(), std::max<std::int64_t>(round - 1, start_round),
        kPreemptedExitCode, seen.from_mpirun ? kFromMpirunNote : "");
  return RunOutcome::Preempted;
}

// Rank 0 writes the sample grid and the checkpoints; a failure there (disk full) stops every
// rank. Parties' own state lives on their ranks: it is gathered first.
void TrainingRun::Impl::write_outputs(std::int64_t round) {
  const int rounds = config.federated.rounds;
  const bool checkpoint_now = round % config.checkpoint_every == 0 || round == rounds;
  const auto party_state =
      checkpoint_now ? gather_party_state() : std::map<std::string, torch::Tensor>{};
  comm::run_on_root(comm, [&] {
    // --sample-every 0: no grids at all, also not at the last round (as --eval-every 0).
    if (config.sample_every > 0 && (round % config.sample_every == 0 || round == rounds))
      io::write_png_grid(run.samples(round), sample_images(shown(), config.federated.seed, 64), 8);
    if (checkpoint_now) {
      const auto ck = checkpoint(round, party_state);
      io::write_checkpoint(run.checkpoint(round), ck);
      io::write_checkpoint(run.latest_checkpoint(), ck);
    }
  });
  if (checkpoint_now) last_checkpoint = round;
}

// The evaluation columns of metrics.csv (kEvalColumns; empty cells when none is due).
double TrainingRun::Impl::evaluate(std::int64_t round, io::MetricsRow& row) {
  if (!evaluator || !(round % config.eval_every == 0 || round == config.federated.rounds)) {
    for (const auto& column : kEvalColumns) row.set(column, "");
    return std::numeric_limits<double>::quiet_NaN();
  }
  eval::EvalOptions eo;
  eo.n = config.eval_n;
  eo.seed = config.federated.seed;
  // The evaluator runs on the CPU: a GPU model's values are copied to a CPU twin, built once
  // per run (building one draws weights from torch's global generator).
  if (!rank_device.device.is_cpu()) {
    if (!eval_cpu_copy) eval_cpu_copy = std::make_unique<models::Gan>(model);
    eval_cpu_copy->copy_from(shown());
  }
  models::Gan& gan = eval_cpu_copy ? *eval_cpu_copy : shown();
  const auto e = eval::evaluate_generator(comm, gan.generator(), model, *evaluator, real_stats, eo,
                                          "round " + std::to_string(round));
  if (comm.is_root())
    spdlog::info(
        "round {} eval (n={}, evaluator {}): FID-all {:.3f} FID-avg {:.3f} KID {:.4f} "
        "precision {:.3f} recall {:.3f} ({:.1f}s)",
        round, e.n, config.evaluator, e.fid_all, e.fid_avg, e.kid, e.precision, e.recall,
        e.seconds);
  row.set("fid_all", cell(e.fid_all))
      .set("fid_avg", cell(e.fid_avg))
      .set("kid", cell(e.kid))
      .set("precision", cell(e.precision))
      .set("recall", cell(e.recall))
      .set("eval_n", std::to_string(e.n))
      .set("eval_s", cell(e.seconds));
  double fid = e.fid_all;  // rank 0's, so every rank's controller sees the same number
  comm.broadcast(&fid, sizeof(fid), 0);
  return fid;
}

void TrainingRun::Impl::adapt(std::int64_t round, const RoundReport& r, double fid) {
  const auto made = trainer->adapt(r, fid);
  if (!comm.is_root()) return;
  for (const auto& d : made) {
    spdlog::info("controller: round {}: {}: {} (signal: {})", round, d.rule, d.action, d.signal);
    io::MetricsRow row;
    row.set("round", std::to_string(round))
        .set("rule", d.rule)
        .set("signal", "\"" + d.signal + "\"")
        .set("action", "\"" + d.action + "\"");
    decisions.append(row);
  }
}

}  // namespace fedgan::run
