// The training run (see include/fedgan/federated/training_run.hpp): setup on every rank, then
// the rounds with rank 0's outputs. Every step that can fail on one rank is agreed.
#include "fedgan/federated/training_run.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

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
#include "fedgan/data/party_data.hpp"
#include "fedgan/data/shard_loader.hpp"
#include "fedgan/eval/evaluate.hpp"
#include "fedgan/eval/real_stats.hpp"
#include "fedgan/federated/checkpoint_layout.hpp"
#include "fedgan/federated/generator_ema.hpp"
#include "fedgan/io/atomic_file.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/io/hdf5.hpp"
#include "fedgan/io/image_grid.hpp"
#include "fedgan/io/run_directory.hpp"
#include "fedgan/privacy/clipping.hpp"
#include "fedgan/train/lr_schedule.hpp"
#include "fedgan/privacy/dp_fedavg.hpp"
#include "fedgan/transfer/warm_start.hpp"

namespace fedgan::federated {
namespace {

using Clock = std::chrono::steady_clock;

struct DataInfo {
  std::int64_t parties = 0, channels = 0, size = 0, classes = 0;
};

DataInfo read_training_data_info(const std::string& path) {
  h5::File file(path, h5::File::Mode::Read);
  DataInfo info;
  const auto shape = file.shape("/images");
  if (shape.size() != 4) throw Error(path + ": /images must be [N, C, H, W]");
  info.channels = shape[1];
  info.size = shape[2];
  if (shape[2] != shape[3]) throw Error(path + ": images must be square, got " +
                                        std::to_string(shape[2]) + "x" + std::to_string(shape[3]));
  info.parties = file.attr_int("/parties", "num_parties").value_or(0);
  if (info.parties <= 0)
    throw Error(path + ": no partition (attribute /parties@num_parties); run `fedgan prepare`");
  info.classes = file.attr_int("/", "num_classes").value_or(0);
  return info;
}

std::string hms(double s) {
  const long t = std::lround(std::max(0.0, s));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  return buf;
}

std::string cell(double v, int precision = 6) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
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

// The fixed latent vectors (drawn on the CPU, so every device shows the same z), on the CPU.
torch::Tensor sample_images(models::Gan& gan, std::uint64_t seed, int n) {
  auto gen = compat::make_cpu_generator(mix_seed(seed, 0x5a3b1e5));
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

const std::vector<std::string> kMetricsColumns = {
    "round",  "wall_s",  "local_train_s", "wait_s", "aggregate_s", "other_s",   "d_loss",
    "g_loss", "parties", "skipped",       "samples", "images",     "images_per_s", "fid_all",
    "fid_avg", "kid",    "precision",     "recall",  "eval_n",     "eval_s"};
// With --dp-clip: ε after the round (at the run's δ) and the clip norm the round used.
const std::vector<std::string> kDpColumns = {"epsilon", "dp_clip"};

std::vector<std::string> metrics_columns(const RunConfig& c) {
  auto columns = kMetricsColumns;
  if (c.dp.enabled) columns.insert(columns.end(), kDpColumns.begin(), kDpColumns.end());
  // ADA's probability after the round (empty without ADA) and the round's lr factor.
  columns.insert(columns.end(), {"ada_p", "lr_factor"});
  return columns;
}

}  // namespace

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
  std::optional<eval::Evaluator> evaluator;
  std::unique_ptr<models::Gan> eval_cpu_copy;  // a GPU run's model, copied for the evaluator
  // The generator EMA (--g-ema) and a model holding it; the trained generator of a resumed
  // run whose /generator is an EMA.
  std::unique_ptr<GeneratorEma> ema;
  std::unique_ptr<models::Gan> ema_gan;
  torch::Tensor resumed_g_raw;
  eval::RealStats real_stats;
  io::MetricsCsv metrics;
  std::unique_ptr<privacy::DpFedAvg> dp;  // with --dp-clip
  std::int64_t last_checkpoint = -1;       // the round latest.h5 holds (this process's writes)

  Impl(comm::Communicator& c, RunConfig rc)
      : comm(c),
        config(std::move(rc)),
        run(config.out),
        metrics(run.metrics(), metrics_columns(config)) {}

  bool resolve_resume();
  void prepare_directory();
  std::vector<LocalParty> load_parties();
  void make_trainer(std::vector<LocalParty> parties);
  void make_dp(const std::vector<LocalParty>& parties);
  bool budget_reached(std::int64_t round);
  io::CheckpointData checkpoint(std::int64_t round,
                                const std::map<std::string, torch::Tensor>& party_state);
  void warm_start();
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
  std::vector<std::string> evaluate(std::int64_t round);
  void log_round(std::int64_t round, const RoundReport& r, double wall, double eta,
                 const std::vector<std::string>& eval_cells);
};

TrainingRun::TrainingRun(comm::Communicator& comm, RunConfig config)
    : m(std::make_unique<Impl>(comm, std::move(config))) {
  m->resume = m->resolve_resume();
  m->prepare_directory();
  install_stop_handlers();
  m->rank_device = resolve_rank_device(comm, m->config.device);
  m->make_trainer(m->load_parties());
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
      config.check_resume(run.latest_checkpoint(),
                          latest.attr_string("/", "config").value_or(""));
    }
    log::add_file(run.log());
  });
}

// Every rank reads the file's header and then only its own parties' rows.
std::vector<LocalParty> TrainingRun::Impl::load_parties() {
  const auto& o = config;
  const DataInfo info = comm::collective_try(comm, [&] {
    // Rank 0 also checks that the parties are disjoint and in range (index vectors only).
    if (comm.is_root()) data::check_partition(o.data);
    return read_training_data_info(o.data);
  });
  const int ranks = comm.size();
  total_parties = o.parties_per_rank > 0 ? o.parties_per_rank * ranks
                                         : static_cast<int>(info.parties);
  comm.agree_ok(total_parties <= info.parties,
                o.data + ": has " + std::to_string(info.parties) + " parties, but " +
                    std::to_string(ranks) + " ranks x " + std::to_string(o.parties_per_rank) +
                    " parties per rank need " + std::to_string(total_parties));
  comm.agree_ok(total_parties >= ranks, o.data + ": has " + std::to_string(total_parties) +
                                            " parties, fewer than the " + std::to_string(ranks) +
                                            " ranks (each rank needs at least one party)");
  comm.agree_ok(!o.conditional || info.classes > 1,
                o.data + ": --conditional needs labels with num_classes > 1");
  // Robust aggregation and attacks against the party count (the same verdict on every rank).
  const std::string aggregation =
      aggregator_settings_problem(o.federated.aggregator, total_parties, o.federated.participation);
  comm.agree_ok(aggregation.empty(), aggregation);
  comm::collective_try(comm, [&] { check_attackers(o.federated.attack, total_parties); });
  model = o.model;
  model.channels = static_cast<int>(info.channels);
  model.image_size = static_cast<int>(info.size);
  model.num_classes = o.conditional ? static_cast<int>(info.classes) : 0;
  // Contiguous blocks: rank r hosts parties [r*P/R, (r+1)*P/R).
  first_party = static_cast<int>(static_cast<std::int64_t>(comm.rank()) * total_parties / ranks);
  last_party = static_cast<int>(static_cast<std::int64_t>(comm.rank() + 1) * total_parties / ranks);
  const auto device = rank_device.device;
  auto parties = comm::collective_try(comm, [&] {
    std::vector<LocalParty> out;
    for (int k = first_party; k < last_party; ++k) {
      data::ShardLoader loader(o.data, k, o.federated.seed);
      loader.to_device(device);  // uploaded once; batches are gathered on the device
      out.push_back({k, std::make_shared<data::ShardPartyData>(std::move(loader))});
    }
    return out;
  });
  // A shard smaller than a batch trains on the whole shard as one smaller batch: say so.
  for (const auto& p : parties)
    if (p.data->size() < o.local.batch_size)
      spdlog::warn(
          "party {} holds {} samples, fewer than --batch-size {}: its batches have {} "
          "samples",
          p.id, p.data->size(), o.local.batch_size, p.data->size());
  return parties;
}

void TrainingRun::Impl::make_trainer(std::vector<LocalParty> parties) {
  FederatedConfig fed = config.federated;
  fed.device = rank_device.device;
  // Under DP the accountant assumes Poisson sampling at rate q = --participation.
  fed.poisson_sampling = config.dp.enabled;
  if (config.dp.enabled) make_dp(parties);
  comm::Communicator& round_comm = rank_device.round_comm(comm);
  trainer = comm::collective_try(comm, [&] {
    return std::make_unique<FederatedTrainer>(round_comm, model, config.local, fed,
                                              std::move(parties), total_parties, config.debug);
  });
  if (dp) {
    // First in each chain: a later transform (secure-aggregation masking) sees clipped,
    // noised updates.
    trainer->add_update_transform(dp->update_transform());
    trainer->add_aggregate_transform(dp->aggregate_transform());
  }
  comm.agree_ok(config.local.kd_weight == 0 || !config.init.path.empty(),
                "--kd-weight needs --init: the pretrained generator is the teacher");
  comm.agree_ok(config.federated.ada.target == 0 || config.local.augment.any(),
                "--ada-target adapts the probability of the --diffaug augmentations; give "
                "--diffaug too (e.g. --diffaug translation,cutout,color)");
}

// Client-level DP: the plan needs every party's n_k (fixed-n weights, the denominator), which
// only the hosting rank knows: one allgather. Ranks host contiguous blocks in rank order, so
// the concatenation is in party order.
void TrainingRun::Impl::make_dp(const std::vector<LocalParty>& parties) {
  std::vector<std::int64_t> mine;
  for (const auto& p : parties) mine.push_back(p.data->size());
  std::vector<std::int64_t> sizes;
  for (const auto& bytes : comm.allgatherv(mine.data(), mine.size() * sizeof(std::int64_t))) {
    const auto n = bytes.size() / sizeof(std::int64_t);
    const auto* v = reinterpret_cast<const std::int64_t*>(bytes.data());
    sizes.insert(sizes.end(), v, v + n);
  }
  const auto& c = config.dp;
  // Every rank checks the same values: a refusal is reached alike everywhere.
  comm.agree_ok(config.federated.aggregator.name == "fedavg",
                "--dp-clip: the noise is calibrated to a sum of clipped updates; use --aggregator "
                "fedavg (not " + config.federated.aggregator.name + ")");
  comm.agree_ok(!(c.noise == privacy::NoiseMode::Distributed && config.federated.skip_nonfinite),
                "--dp-noise distributed with --skip-nonfinite: a skipped party's share of the "
                "noise would be missing from the sum (use --dp-noise central, or drop "
                "--skip-nonfinite)");
  auto plan = comm::collective_try(comm, [&] {
    return privacy::make_dp_plan(c, config.federated.participation, sizes);
  });
  if (comm.is_root() && c.noise_multiplier == 0)
    spdlog::warn("--dp-noise-multiplier 0: updates are clipped but not noised; epsilon is "
                 "infinite (no privacy guarantee)");
  dp = std::make_unique<privacy::DpFedAvg>(comm, std::move(plan));
}

// A checkpoint of the run: model, server and party state, and the DP account.
io::CheckpointData TrainingRun::Impl::checkpoint(
    std::int64_t round, const std::map<std::string, torch::Tensor>& party_state) {
  auto ck = make_checkpoint(*trainer, round, config.config_text, party_state, ema_gan.get());
  if (dp)
    for (auto& [k, v] : dp->state()) ck.state[k] = v;
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
    spdlog::warn("--epsilon-budget {:g}: round {} would take epsilon from {:.4g} to {:.4g}; "
                 "stopped after round {} ({} holds it)",
                 budget, round, now.epsilon, next.epsilon, round - 1, run.latest_checkpoint());
  return true;
}

// Warm start: rank 0 reads the pretrained model and loads what matches by name and shape.
void TrainingRun::Impl::warm_start() {
  const auto& init = config.init;
  if (!init.path.empty()) {
    comm::run_on_root(comm, [&] {
      auto pre = transfer::read_pretrained(init.path, init.prefix_map);
      auto g = transfer::load_partial(trainer->global().g_flat(), pre.generator);
      auto d = transfer::load_partial(trainer->global().d_flat(), pre.discriminator);
      const std::string report = "warm start from " + init.path + "\n" + g.text("generator") +
                                 d.text("discriminator");
      for (std::size_t a = 0, b; a < report.size(); a = b + 1) {
        b = report.find('\n', a);
        if (b == std::string::npos) b = report.size();
        if (b > a) spdlog::info("{}", report.substr(a, b - a));
      }
      io::write_text_atomically(config.out + "/init_report.txt", report);
      for (const auto* r : {&g, &d}) {
        if (r->loaded_numel == r->total_numel) continue;
        const char* what = r == &g ? "generator" : "discriminator";
        spdlog::warn(
            "warm start: only {:.3g}% of the {}'s values ({} of {}) came from {}; the "
            "rest keep their random initial values (see {}/init_report.txt)",
            100.0 * static_cast<double>(r->loaded_numel) /
                static_cast<double>(std::max<std::int64_t>(1, r->total_numel)),
            what, r->loaded_numel, r->total_numel, init.path, config.out);
      }
      if (init.strict && !(g.clean() && d.clean()))
        throw Error(init.path + ": --init-strict: the checkpoint does not match this model "
                    "exactly (see " + config.out + "/init_report.txt)");
      if (g.loaded.empty() && d.loaded.empty())
        throw Error(init.path + ": no tensor matches this model by name and shape");
    });
    trainer->broadcast_global(0);
    if (config.local.kd_weight > 0) trainer->snapshot_teacher();
  }
  if (comm.is_root()) {
    const auto& gp = trainer->g_plan();
    const auto& dp = trainer->d_plan();
    if (!gp.frozen.empty() || !dp.frozen.empty())
      spdlog::info("fine-tuning: {} G and {} D tensors frozen; {} of {} values aggregated",
                   gp.frozen.size(), dp.frozen.size(), trainer->aggregated_numel(),
                   trainer->global().g_flat().numel() + trainer->global().d_flat().numel());
  }
}

// Rank 0 reads the checkpoint; every rank receives model, round and server state, and takes
// its own parties' state.
void TrainingRun::Impl::resume_from_checkpoint() {
  layout::StateParts state;
  std::map<std::string, torch::Tensor> privacy_state;
  const auto latest = run.latest_checkpoint();
  comm::run_on_root(comm, [&] {
    auto ck = io::read_checkpoint(latest);
    if (ck.architecture != model.to_string())
      throw Error(latest + ": checkpoint architecture '" + ck.architecture +
                  "' differs from this run's '" + model.to_string() + "'");
    io::load_strict(trainer->global().g_flat(), ck.generator, "generator", latest);
    io::load_strict(trainer->global().d_flat(), ck.discriminator, "discriminator", latest);
    start_round = ck.round;
    state = layout::split_state(ck.state);
    for (const auto& [k, v] : ck.state)
      if (k.rfind("privacy/", 0) == 0) privacy_state[k] = v;
  });
  comm.broadcast(&start_round, sizeof(start_round), 0);
  last_checkpoint = start_round;
  comm::broadcast_tensors(comm, privacy_state, 0);
  comm.agree_ok(dp || privacy_state.empty(),
                latest + ": the run being resumed is differentially private (it holds an "
                         "epsilon account): resume it with its --dp-* options");
  if (dp) comm::collective_try(comm, [&] { dp->load_state(privacy_state); });
  comm::broadcast_tensors(comm, state.server, 0);
  trainer->load_server_state(state.server);
  if (auto it = state.server.find(layout::kGRaw); it != state.server.end())
    resumed_g_raw = it->second;
  if (trainer->has_party_state()) {
    comm::broadcast_tensors(comm, state.party, 0);
    comm::collective_try(comm, [&] { trainer->load_party_state_tensors(state.party); });
  }
}

// The generator EMA starts from the starting model, the same on every rank (after the
// broadcast). A resumed run's /generator was its EMA: the trained generator comes from g_raw
// (also when this run has no EMA).
void TrainingRun::Impl::start_ema() {
  if (config.g_ema > 0) {
    ema_gan = std::make_unique<models::Gan>(model, rank_device.device);
    ema_gan->copy_from(trainer->global());
    ema = std::make_unique<GeneratorEma>(config.g_ema, trainer->global().g_flat().flat(),
                                         trainer->global().g_flat().parameter_numel());
  }
  if (!resumed_g_raw.defined()) return;
  auto& g = trainer->global().g_flat();
  comm.agree_ok(resumed_g_raw.numel() == g.numel(),
                run.latest_checkpoint() + ": /state/server/g_raw has " +
                    std::to_string(resumed_g_raw.numel()) + " values; this generator has " +
                    std::to_string(g.numel()));
  torch::NoGradGuard no_grad;
  g.flat().copy_(resumed_g_raw.reshape({-1}));
  resumed_g_raw = torch::Tensor();
}

// After a round's server step: every rank averages its (identical) global generator.
void TrainingRun::Impl::update_ema(std::int64_t round) {
  if (!ema) return;
  ema->update(trainer->global().g_flat().flat(), static_cast<int>(round));
  torch::NoGradGuard no_grad;
  ema_gan->g_flat().flat().copy_(ema->values());
}

// Evaluation: every rank loads the evaluator; real statistics are cached per dataset.
void TrainingRun::Impl::load_evaluator() {
  comm.agree_ok(config.eval_every == 0 || !config.evaluator.empty(),
                "--eval-every needs --evaluator FILE (make one with `fedgan evaluator`)");
  if (config.eval_every == 0) return;
  comm::collective_try(comm, [&] { evaluator.emplace(eval::Evaluator::load(config.evaluator)); });
  // Checked now rather than at the first evaluation, after rounds of training.
  const auto need = std::max(evaluator->feature_dim(), eval::EvalOptions{}.knn);
  comm.agree_ok(config.eval_n > need,
                "--eval-n " + std::to_string(config.eval_n) +
                    ": FID needs more samples than the evaluator's " +
                    std::to_string(evaluator->feature_dim()) +
                    " features, and precision/recall more than k = " +
                    std::to_string(eval::EvalOptions{}.knn) + "; use --eval-n " +
                    std::to_string(need + 1) + " or more (2000+ for comparable figures)");
  real_stats = eval::load_or_compute_real_stats(comm, config.data, *evaluator);
}

void TrainingRun::Impl::log_start() {
  if (!comm.is_root()) return;
  spdlog::info("fedgan train: {} rank(s), {} parties ({}..{} on rank 0), model {}", comm.size(),
               total_parties, first_party, last_party - 1, model.to_string());
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
  }
  if (dp) {
    spdlog::info("DP: {}", dp->guarantee(config.federated.rounds));
    spdlog::info("  (what {} rounds give; Poisson sampling of parties, {} noise, {} weighting, "
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
    const RoundReport r = s.trainer->run_round(static_cast<int>(round),
                                               [&] { return debug_stop || stop_requested(); });
    if (r.interrupted) return s.preempted(round);
    if (s.dp) {
      // Noised BatchNorm variances below zero would make eval-mode samples NaN.
      for (auto* flat : {&s.trainer->global().g_flat(), &s.trainer->global().d_flat()})
        privacy::clamp_running_variances(*flat, privacy::kRunningVarFloor);
    }
    s.check_round(round, r);
    s.update_ema(round);
    s.write_outputs(round);
    auto eval_cells = s.evaluate(round);
    if (s.dp) {
      eval_cells.push_back(cell(s.dp->spent().epsilon));
      eval_cells.push_back(cell(clip_used));
    }
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    train_seconds += wall;
    const double eta = train_seconds / static_cast<double>(round - s.start_round) *
                       static_cast<double>(rounds - round);
    s.log_round(round, r, wall, eta, eval_cells);
  }
  if (s.dp && s.comm.is_root()) spdlog::info("DP: {}", s.dp->guarantee(s.dp->rounds_accounted()));
  if (s.comm.is_root())
    spdlog::info("done in {}: checkpoint {}, samples {}",
                 hms(std::chrono::duration<double>(Clock::now() - t_start).count()),
                 s.run.latest_checkpoint(), s.run.samples(rounds));
  return RunOutcome::Finished;
}

// Every rank's party state, on rank 0 (one broadcast per rank; empty when nothing is kept).
std::map<std::string, torch::Tensor> TrainingRun::Impl::gather_party_state() {
  std::map<std::string, torch::Tensor> all;
  if (!trainer->has_party_state()) return all;
  for (int r = 0; r < comm.size(); ++r) {
    auto part = comm.rank() == r ? trainer->party_state_tensors()
                                 : std::map<std::string, torch::Tensor>{};
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
    if (write)
      io::write_checkpoint(run.latest_checkpoint(), checkpoint(round - 1, party_state));
  });
  // The signal may have reached one rank only: learn which signal, the first rank that got
  // it, and whether it came from mpirun aborting the job.
  std::int64_t seen[3] = {stop_signal(), stop_signal() ? comm.size() - comm.rank() : 0,
                          term_from_open_mpi_launcher() ? 1 : 0};
  comm.allreduce_max(seen, 3);
  if (comm.is_root())
    spdlog::warn(
        "{}: stopped in round {}; {} holds round {}; continue with --resume. "
        "fedgan exits with code {}{}",
        round == config.debug.stop_round && seen[0] == 0
            ? std::string("--debug-stop-round")
            : describe_stop_signal(static_cast<int>(seen[0]),
                                   comm.size() - static_cast<int>(seen[1]), comm.size()),
        round, run.latest_checkpoint(), std::max<std::int64_t>(round - 1, start_round),
        kPreemptedExitCode, seen[2] ? kFromMpirunNote : "");
  return RunOutcome::Preempted;
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
  if (!torch::isfinite(trainer->global().g_flat().flat()).all().item<bool>() ||
      !torch::isfinite(trainer->global().d_flat().flat()).all().item<bool>())
    throw Error("round " + std::to_string(round) +
                    ": the global model holds NaN/inf after "
                    "the server step (--server-optimizer " +
                    config.federated.server.name + ", --server-lr " +
                    cell(config.federated.server.lr) +
                    "); stopping "
                    "before it is saved",
                /*collective=*/true);
}

// Rank 0 writes the sample grid and the checkpoints; a failure there (disk full) stops every
// rank. Parties' own state lives on their ranks: it is gathered first.
void TrainingRun::Impl::write_outputs(std::int64_t round) {
  const int rounds = config.federated.rounds;
  const bool checkpoint_now = round % config.checkpoint_every == 0 || round == rounds;
  const auto party_state =
      checkpoint_now ? gather_party_state() : std::map<std::string, torch::Tensor>{};
  comm::run_on_root(comm, [&] {
    if (round % config.sample_every == 0 || round == rounds)
      io::write_png_grid(run.samples(round), sample_images(shown(), config.federated.seed, 64), 8);
    if (checkpoint_now) {
      const auto ck = checkpoint(round, party_state);
      io::write_checkpoint(run.checkpoint(round), ck);
      io::write_checkpoint(run.latest_checkpoint(), ck);
    }
  });
  if (checkpoint_now) last_checkpoint = round;
}

// The evaluation columns of metrics.csv (empty cells when none is due).
std::vector<std::string> TrainingRun::Impl::evaluate(std::int64_t round) {
  std::vector<std::string> cells(7);
  if (!evaluator || !(round % config.eval_every == 0 || round == config.federated.rounds))
    return cells;
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
  const auto e = eval::evaluate_generator(comm, gan.generator(), model, *evaluator, real_stats,
                                          eo, "round " + std::to_string(round));
  if (comm.is_root())
    spdlog::info("round {} eval (n={}, evaluator {}): FID-all {:.3f} FID-avg {:.3f} KID {:.4f} "
                 "precision {:.3f} recall {:.3f} ({:.1f}s)",
                 round, e.n, config.evaluator, e.fid_all, e.fid_avg, e.kid, e.precision,
                 e.recall, e.seconds);
  return {cell(e.fid_all), cell(e.fid_avg), cell(e.kid), cell(e.precision),
          cell(e.recall), std::to_string(e.n), cell(e.seconds)};
}

// Rank 0: the metrics row and the round's log line.
void TrainingRun::Impl::log_round(std::int64_t round, const RoundReport& r, double wall,
                                  double eta, const std::vector<std::string>& eval_cells) {
  if (!comm.is_root()) return;
  const int rounds = config.federated.rounds;
  const double other = std::max(0.0, wall - r.own_local_s - r.wait_s - r.aggregate_s);
  const double ips = static_cast<double>(r.images) / std::max(1e-9, r.local_s) / comm.size();
  std::vector<std::string> row = {std::to_string(round), cell(wall), cell(r.local_s),
                                  cell(r.wait_s), cell(r.aggregate_s), cell(other),
                                  cell(r.d_loss), cell(r.g_loss), std::to_string(r.parties),
                                  std::to_string(r.skipped), std::to_string(r.samples),
                                  std::to_string(r.images), cell(ips)};
  row.insert(row.end(), eval_cells.begin(), eval_cells.end());
  row.push_back(config.federated.ada.target > 0 ? cell(r.ada_p) : "");
  row.push_back(cell(train::lr_factor(config.local.lr_schedule, static_cast<int>(round),
                                      config.local.schedule_rounds, config.local.lr_final_ratio)));
  metrics.append(row);
  spdlog::info("{}round {}/{} | D {:.4f} G {:.4f} | parties {}{} | local {:.2f}s agg {:.4f}s "
               "other {:.3f}s | {:.0f} img/s/rank | ETA {}{}",
               progress_bar(round, rounds), round, rounds, r.d_loss, r.g_loss, r.parties,
               r.skipped ? " (" + std::to_string(r.skipped) + " skipped)" : std::string(),
               r.local_s, r.aggregate_s, other, ips, hms(eta),
               dp ? fmt::format(" | epsilon {:.4g}", dp->spent().epsilon) : std::string());
}

}  // namespace fedgan::federated
