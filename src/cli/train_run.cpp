// The training run: data shards, model, rounds, and rank 0's files (metrics, samples,
// checkpoints). Every step that can fail on one rank is agreed, so no rank hangs.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "fedgan/cli/app.hpp"
#include "fedgan/cli/run_settings.hpp"
#include "fedgan/cli/train_options.hpp"
#include "fedgan/comm/collective.hpp"
#include "fedgan/comm/tensor_map.hpp"
#include "fedgan/core/device.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/core/log.hpp"
#include "fedgan/core/stop_signal.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/data/dataset_file.hpp"
#include "fedgan/data/shard_loader.hpp"
#include "fedgan/eval/evaluate.hpp"
#include "fedgan/eval/real_stats.hpp"
#include "fedgan/federated/generator_ema.hpp"
#include "fedgan/io/atomic_file.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/io/hdf5.hpp"
#include "fedgan/io/image_grid.hpp"
#include "fedgan/io/run_directory.hpp"
#include "fedgan/transfer/freeze_policy.hpp"
#include "fedgan/transfer/warm_start.hpp"

namespace fedgan::cli {
namespace {

// A ShardLoader as the trainer's PartyData.
class ShardPartyData final : public train::PartyData {
 public:
  explicit ShardPartyData(data::ShardLoader loader) : m_loader(std::move(loader)) {}
  std::int64_t size() const override { return m_loader.size(); }
  std::vector<train::TrainBatch> epoch(std::int64_t epoch, int batch_size) override {
    std::vector<train::TrainBatch> out;
    const bool drop_last = m_loader.size() >= batch_size;
    for (auto& b : m_loader.epoch_batches(epoch, batch_size, drop_last))
      out.push_back({b.images, b.labels});
    return out;
  }

 private:
  data::ShardLoader m_loader;
};

struct DataInfo {
  std::int64_t parties = 0, channels = 0, size = 0, classes = 0;
};

DataInfo read_data_info(const std::string& path) {
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

std::string fmt_duration(double s) {
  const long t = std::lround(std::max(0.0, s));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  return buf;
}

std::string num(double v, int precision = 6) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
  return buf;
}

// Open MPI's mpirun forwards SIGUSR1 to the ranks, but a SIGTERM sent to mpirun itself makes
// it abort the job: it sends SIGTERM to the ranks, kills them about a second later
// (odls_base_sigkill_timeout) and exits with its own code 1 whatever the ranks return (measured
// with Open MPI 4.1). A rank sees that case as a SIGTERM from its launcher, its parent process.
constexpr const char* kFromMpirunNote =
    ". This SIGTERM came from mpirun, which was itself sent SIGTERM: Open MPI's mpirun then kills "
    "the ranks within about a second and exits with code 1, not 3. To stop a run cleanly, send "
    "SIGUSR1 to mpirun (it forwards it) or SIGTERM to the ranks";

bool term_from_open_mpi_launcher() {
  return stop_signal() == SIGTERM && stop_signal_sender() == static_cast<int>(::getppid()) &&
         std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr;
}

std::string describe_signal(int signal, int first_rank, int ranks) {
  std::string name = signal == SIGUSR1   ? "SIGUSR1"
                     : signal == SIGTERM ? "SIGTERM"
                                         : "signal " + std::to_string(signal);
  if (signal == SIGUSR1 || signal == SIGTERM) name += " (" + std::to_string(signal) + ")";
  return "stop signal " + name + (ranks > 1 ? " on rank " + std::to_string(first_rank) : "");
}

// The fixed latent vectors (drawn on the CPU, so every device shows the same z), on the CPU.
torch::Tensor sample_images(models::Gan& gan, std::uint64_t seed, int n) {
  auto gen = compat::make_cpu_generator(federated::mix_seed(seed, 0x5a3b1e5));
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

// This rank's device and the communicator that sums its models: the job's own (MPI or
// serial; GPU buffers staged through host memory) or NCCL on top of it. Agreed on every rank.
struct RankDevice {
  torch::Device device = torch::kCPU;
  std::unique_ptr<comm::Communicator> nccl;  // set when the models are summed by NCCL
};

RankDevice resolve_device(comm::Communicator& comm, const TrainOptions& o) {
  RankDevice out;
  const int index = comm::collective_try(comm, [&] {
    if (o.deterministic) {
      // cuBLAS is deterministic only with a fixed workspace; set before its first handle.
      ::setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
      compat::set_deterministic(true);
    }
    const auto d = choose_device(parse_device_kind(o.device), comm.local_rank());
    if (o.precision == "bf16" && !d.is_cuda())
      throw Error("--precision bf16 needs a CUDA device (this rank computes on the CPU)");
    return d.is_cuda() ? static_cast<int>(d.index()) : -1;
  });
  if (index >= 0) out.device = torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(index));
  const CommKind kind = comm::collective_try(comm, [&] {
    return resolve_comm_kind(parse_comm_kind(o.comm), out.device, comm::nccl_built(),
                             comm.local_size(), compat::cuda_device_count());
  });
  // NCCL only when every rank chose it (auto may differ between nodes): else all use MPI.
  std::int64_t not_nccl = kind == CommKind::Nccl ? 0 : 1;
  comm.allreduce_max(&not_nccl, 1);
  if (!not_nccl) out.nccl = comm::make_nccl_communicator(comm, index);
  const auto lines = comm.allgather("rank " + std::to_string(comm.rank()) + ": " +
                                    out.device.str());
  if (comm.is_root()) {
    std::string all;
    for (const auto& l : lines) all += (all.empty() ? "" : ", ") + l;
    spdlog::info("devices: {}; models summed by {}{}", all,
                 out.nccl
                     ? "NCCL " + comm::nccl_version() + " on the GPU"
                     : (out.device.is_cuda() ? comm.backend() + " (host-staged)" : comm.backend()),
                 o.precision == "bf16" ? "; bf16 autocast" : "");
  }
  return out;
}

// The model, the server optimizer and the parties' own state (from gather_party_state).
// With a generator EMA (`shown`), /generator holds the average (what sampling, evaluation and
// warm starts read) and the trained generator goes to /state/server/g_raw (for resume).
io::CheckpointData make_checkpoint(federated::FederatedTrainer& trainer, std::int64_t round,
                                   const std::string& config_text,
                                   const std::map<std::string, torch::Tensor>& party_state,
                                   models::Gan* shown = nullptr) {
  io::CheckpointData ck;
  ck.round = round;
  ck.architecture = trainer.global().config().to_string();
  ck.config_text = config_text;
  const auto& g_flat = shown ? shown->g_flat() : trainer.global().g_flat();
  for (auto& [k, v] : io::named_tensors(g_flat)) ck.generator[k] = v;
  if (shown) ck.state["server/g_raw"] = trainer.global().g_flat().flat();
  for (auto& [k, v] : io::named_tensors(trainer.global().d_flat())) ck.discriminator[k] = v;
  for (auto& [k, v] : trainer.server_state()) ck.state["server/" + k] = v;
  for (auto& [k, v] : party_state) ck.state[k] = v;
  return ck;
}

// Every rank's party state, on rank 0 (one broadcast per rank; empty when nothing is kept).
std::map<std::string, torch::Tensor> gather_party_state(comm::Communicator& comm,
                                                        federated::FederatedTrainer& t) {
  std::map<std::string, torch::Tensor> all;
  if (!t.has_party_state()) return all;
  for (int r = 0; r < comm.size(); ++r) {
    auto part = comm.rank() == r ? t.party_state_tensors() : std::map<std::string, torch::Tensor>{};
    comm::broadcast_tensors(comm, part, r);
    if (comm.is_root()) all.insert(part.begin(), part.end());
  }
  return all;
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

}  // namespace

int run_training(comm::Communicator& comm, const TrainOptions& options,
                 const std::string& config_text) {
  const io::RunDirectory run(options.out);
  // --resume auto: resume exactly when rank 0 finds a checkpoint (a requeued Slurm job).
  // `--resume` alone arrives as an empty value.
  std::int64_t resume_flag =
      options.resume.empty() || options.resume == "yes" || options.resume == "true";
  if (options.resume == "auto" && comm.is_root())
    resume_flag = std::filesystem::exists(run.latest_checkpoint()) ? 1 : 0;
  comm.broadcast(&resume_flag, sizeof(resume_flag), 0);
  const bool resume = resume_flag != 0;
  // Rank 0 owns the run directory; everyone learns whether that worked.
  comm::collective_try(comm, [&] {
    if (!comm.is_root()) return;
    run.prepare(resume, options.force || options.resume == "auto");
    if (resume && !std::filesystem::exists(run.latest_checkpoint()))
      throw Error(run.latest_checkpoint() + ": --resume needs this checkpoint, and it is missing");
    // The run being continued must be this run: same data, seed, parties, model ... (its
    // settings are in the checkpoint's config attribute).
    if (resume) {
      const h5::File latest(run.latest_checkpoint(), h5::File::Mode::Read);
      check_resume_settings(run.latest_checkpoint(), latest.attr_string("/", "config").value_or(""),
                            config_text, options.allow_change);
    }
    log::add_file(run.log());
  });
  install_stop_handlers();
  RankDevice rank_device = resolve_device(comm, options);
  const torch::Device device = rank_device.device;
  comm::Communicator& round_comm = rank_device.nccl ? *rank_device.nccl : comm;

  // Every rank reads the file's header and then only its own parties' rows.
  const DataInfo info = comm::collective_try(comm, [&] {
    // Rank 0 also checks that the parties are disjoint and in range (index vectors only).
    if (comm.is_root()) data::check_partition(options.data);
    return read_data_info(options.data);
  });
  const int ranks = comm.size();
  const int total = options.parties_per_rank > 0 ? options.parties_per_rank * ranks
                                                 : static_cast<int>(info.parties);
  comm.agree_ok(total <= info.parties,
                options.data + ": has " + std::to_string(info.parties) + " parties, but " +
                    std::to_string(ranks) + " ranks x " + std::to_string(options.parties_per_rank) +
                    " parties per rank need " + std::to_string(total));
  comm.agree_ok(total >= ranks, options.data + ": has " + std::to_string(total) +
                                    " parties, fewer than the " + std::to_string(ranks) +
                                    " ranks (each rank needs at least one party)");
  comm.agree_ok(!options.conditional || info.classes > 1,
                options.data + ": --conditional needs labels with num_classes > 1");
  // Contiguous blocks: rank r hosts parties [r*P/R, (r+1)*P/R).
  const int first = static_cast<int>(static_cast<std::int64_t>(comm.rank()) * total / ranks);
  const int last = static_cast<int>(static_cast<std::int64_t>(comm.rank() + 1) * total / ranks);
  std::vector<federated::LocalParty> parties = comm::collective_try(comm, [&] {
    std::vector<federated::LocalParty> out;
    for (int k = first; k < last; ++k) {
      data::ShardLoader loader(options.data, k, options.federated.seed);
      loader.to_device(device);  // uploaded once; batches are gathered on the device
      out.push_back({k, std::make_shared<ShardPartyData>(std::move(loader))});
    }
    return out;
  });
  // A shard smaller than a batch trains on the whole shard as one smaller batch: say so.
  for (const auto& p : parties)
    if (p.data->size() < options.local.batch_size)
      spdlog::warn(
          "party {} holds {} samples, fewer than --batch-size {}: its batches have {} "
          "samples",
          p.id, p.data->size(), options.local.batch_size, p.data->size());

  models::ModelConfig model = options.model;
  model.channels = static_cast<int>(info.channels);
  model.image_size = static_cast<int>(info.size);
  model.num_classes = options.conditional ? static_cast<int>(info.classes) : 0;
  federated::FederatedConfig fed = options.federated;
  fed.device = device;
  train::LocalTrainConfig local = options.local;
  local.reuse_fake = options.g_fake == "reuse";
  local.autocast_bf16 = options.precision == "bf16";
  local.augment = train::AugmentPolicy::parse(options.diffaug);  // checked by the CLI
  local.lr_schedule = train::parse_lr_schedule(options.lr_schedule);
  local.schedule_rounds = options.federated.rounds;
  comm.agree_ok(options.federated.ada.target == 0 || local.augment.any(),
                "--ada-target adapts the probability of the --diffaug augmentations; give "
                "--diffaug too (e.g. --diffaug translation,cutout,color)");
  // One list of globs for G and D (an empty entry, as a written config.toml holds, is none).
  auto& globs = fed.freeze_g.train_only;
  globs.erase(std::remove(globs.begin(), globs.end(), std::string()), globs.end());
  fed.freeze_d.train_only = globs;
  auto trainer = comm::collective_try(comm, [&] {
    fed.freeze_g.lr_mult = transfer::parse_lr_mult(options.lr_mult_g, "--lr-mult-g");
    fed.freeze_d.lr_mult = transfer::parse_lr_mult(options.lr_mult_d, "--lr-mult-d");
    return std::make_shared<federated::FederatedTrainer>(round_comm, model, local, fed,
                                                         std::move(parties), total);
  });
  comm.agree_ok(options.local.kd_weight == 0 || !options.init.empty(),
                "--kd-weight needs --init: the pretrained generator is the teacher");

  // Warm start: rank 0 reads the pretrained model and loads what matches by name and shape.
  if (!options.init.empty()) {
    comm::collective_try(comm, [&] {
      if (!comm.is_root()) return;
      auto pre = transfer::read_pretrained(options.init, transfer::parse_prefix_map(options.init_map));
      auto g = transfer::load_partial(trainer->global().g_flat(), pre.generator);
      auto d = transfer::load_partial(trainer->global().d_flat(), pre.discriminator);
      const std::string report = "warm start from " + options.init + "\n" +
                                 g.text("generator") + d.text("discriminator");
      for (std::size_t a = 0, b; a < report.size(); a = b + 1) {
        b = report.find('\n', a);
        if (b == std::string::npos) b = report.size();
        if (b > a) spdlog::info("{}", report.substr(a, b - a));
      }
      io::write_text_atomically(options.out + "/init_report.txt", report);
      for (const auto* r : {&g, &d}) {
        if (r->loaded_numel == r->total_numel) continue;
        const char* what = r == &g ? "generator" : "discriminator";
        spdlog::warn(
            "warm start: only {:.3g}% of the {}'s values ({} of {}) came from {}; the "
            "rest keep their random initial values (see {}/init_report.txt)",
            100.0 * static_cast<double>(r->loaded_numel) /
                static_cast<double>(std::max<std::int64_t>(1, r->total_numel)),
            what, r->loaded_numel, r->total_numel, options.init, options.out);
      }
      if (options.init_strict && !(g.clean() && d.clean()))
        throw Error(options.init + ": --init-strict: the checkpoint does not match this model "
                    "exactly (see " + options.out + "/init_report.txt)");
      if (g.loaded.empty() && d.loaded.empty())
        throw Error(options.init + ": no tensor matches this model by name and shape");
    });
    trainer->broadcast_global(0);
    if (options.local.kd_weight > 0) trainer->snapshot_teacher();
  }
  if (comm.is_root()) {
    const auto& gp = trainer->g_plan();
    const auto& dp = trainer->d_plan();
    if (!gp.frozen.empty() || !dp.frozen.empty())
      spdlog::info("fine-tuning: {} G and {} D tensors frozen; {} of {} values aggregated",
                   gp.frozen.size(), dp.frozen.size(), trainer->aggregated_numel(),
                   trainer->global().g_flat().numel() + trainer->global().d_flat().numel());
  }

  std::int64_t start_round = 0;
  std::map<std::string, torch::Tensor> state;  // the resumed server state
  if (resume) {
    // Rank 0 reads the checkpoint; every rank receives model, round and server state.
    std::map<std::string, torch::Tensor> party_state;
    comm::collective_try(comm, [&] {
      if (!comm.is_root()) return;
      auto ck = io::read_checkpoint(run.latest_checkpoint());
      if (ck.architecture != model.to_string())
        throw Error(run.latest_checkpoint() + ": checkpoint architecture '" + ck.architecture +
                    "' differs from this run's '" + model.to_string() + "'");
      io::load_strict(trainer->global().g_flat(), ck.generator, "generator", run.latest_checkpoint());
      io::load_strict(trainer->global().d_flat(), ck.discriminator, "discriminator",
                      run.latest_checkpoint());
      start_round = ck.round;
      for (auto& [k, v] : ck.state) {
        if (k.rfind("server/", 0) == 0) state[k.substr(7)] = v;
        if (k.rfind("party/", 0) == 0) party_state[k] = v;
      }
    });
    comm.broadcast(&start_round, sizeof(start_round), 0);
    comm::broadcast_tensors(comm, state, 0);
    trainer->load_server_state(state);
    if (trainer->has_party_state()) {
      comm::broadcast_tensors(comm, party_state, 0);
      comm::collective_try(comm, [&] { trainer->load_party_state_tensors(party_state); });
    }
  }
  // One source of truth for the starting model: rank 0's.
  trainer->broadcast_global(0);
  // The generator EMA starts from the starting model (a resumed run's /generator is its EMA,
  // and the trained generator comes from g_raw); `shown` is what samples and evaluation use.
  std::unique_ptr<federated::GeneratorEma> ema;
  std::unique_ptr<models::Gan> ema_gan;
  if (options.g_ema > 0) {
    ema_gan = std::make_unique<models::Gan>(model, device);
    ema_gan->copy_from(trainer->global());
    ema =
        std::make_unique<federated::GeneratorEma>(options.g_ema, trainer->global().g_flat().flat(),
                                                  trainer->global().g_flat().parameter_numel());
  }
  if (auto raw = state.find("g_raw"); raw != state.end()) {
    torch::NoGradGuard no_grad;
    comm.agree_ok(raw->second.numel() == trainer->global().g_flat().numel(),
                  run.latest_checkpoint() + ": /state/server/g_raw does not fit this generator");
    trainer->global().g_flat().flat().copy_(raw->second.reshape({-1}));
  }
  models::Gan& shown = ema_gan ? *ema_gan : trainer->global();

  // Evaluation: every rank loads the evaluator; real statistics are cached per dataset.
  std::optional<eval::Evaluator> evaluator;
  std::unique_ptr<models::Gan> eval_cpu_copy;  // a GPU run's model, copied for the CPU evaluator
  eval::RealStats real_stats;
  comm.agree_ok(options.eval_every == 0 || !options.evaluator.empty(),
                "--eval-every needs --evaluator FILE (make one with `fedgan evaluator`)");
  if (options.eval_every > 0) {
    comm::collective_try(comm,
                         [&] { evaluator.emplace(eval::Evaluator::load(options.evaluator)); });
    // Checked now rather than at the first evaluation, after rounds of training.
    comm.agree_ok(
        options.eval_n > std::max(evaluator->feature_dim(), eval::EvalOptions{}.knn),
        "--eval-n " + std::to_string(options.eval_n) +
            ": FID needs more samples than the evaluator's " +
            std::to_string(evaluator->feature_dim()) +
            " features, and precision/recall more than k = " +
            std::to_string(eval::EvalOptions{}.knn) + "; use --eval-n " +
            std::to_string(std::max(evaluator->feature_dim(), eval::EvalOptions{}.knn) + 1) +
            " or more (2000+ for comparable figures)");
    real_stats = eval::load_or_compute_real_stats(comm, options.data, *evaluator);
  }

  const int rounds = options.federated.rounds;
  io::MetricsCsv metrics(
      run.metrics(),
      {"round",        "wall_s",  "local_train_s", "wait_s",   "aggregate_s", "other_s",
       "d_loss",       "g_loss",  "parties",       "skipped",  "samples",     "images",
       "images_per_s", "fid_all", "fid_avg",       "kid",      "precision",   "recall",
       "eval_n",       "eval_s",  "ada_p",         "lr_factor"});
  if (comm.is_root()) {
    spdlog::info("fedgan train: {} rank(s), {} parties ({}..{} on rank 0), model {}", ranks, total,
                 first, last - 1, model.to_string());
    spdlog::info("  G {} + D {} values; one fused allreduce of {:.1f} MB per round",
                 trainer->global().g_flat().numel(), trainer->global().d_flat().numel(),
                 static_cast<double>(trainer->aggregated_numel()) * 8 / 1e6);
    if (resume) {
      spdlog::info("  resuming after round {} from {}", start_round, run.latest_checkpoint());
      metrics.load_existing(start_round);
    }
    // The settings of this invocation (a resume may change rounds, learning rates ...).
    io::write_text_atomically(run.config(), config_text);
  }

  const auto t_start = std::chrono::steady_clock::now();
  double train_seconds = 0;
  for (std::int64_t round = start_round + 1; round <= rounds; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    const bool debug_stop = round == options.debug_stop_round;
    const federated::RoundReport r =
        trainer->run_round(static_cast<int>(round), [&] { return debug_stop || stop_requested(); });
    if (r.interrupted) {
      // Preemption: keep the last complete round (round - 1) and leave with a distinct code.
      // The parties' own state (restored to the end of round - 1) goes with it, so a resume
      // with kept Adam moments or local BN statistics is exact too.
      const bool write = round - 1 > start_round;
      const auto party_state = write ? gather_party_state(comm, *trainer)
                                     : std::map<std::string, torch::Tensor>{};
      comm::collective_try(comm, [&] {
        if (!comm.is_root() || !write) return;
        io::write_checkpoint(
            run.latest_checkpoint(),
            make_checkpoint(*trainer, round - 1, config_text, party_state, ema_gan.get()));
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
            debug_stop && seen[0] == 0
                ? std::string("--debug-stop-round")
                : describe_signal(static_cast<int>(seen[0]),
                                  comm.size() - static_cast<int>(seen[1]), comm.size()),
            round, run.latest_checkpoint(), std::max<std::int64_t>(round - 1, start_round),
            static_cast<int>(kPreempted), seen[2] ? kFromMpirunNote : "");
      return kPreempted;
    }
    // Every party of the round was dropped (--skip-nonfinite): the model cannot move, and
    // going on would log zero losses and save an unchanged model as if trained.
    if (r.parties == 0)
      throw Error("round " + std::to_string(round) + ": every participating party (" +
                      std::to_string(r.skipped) +
                      ") produced a non-finite update and was "
                      "skipped (--skip-nonfinite), so the global model cannot change; stopping "
                      "(nothing was written for this round). Lower --lr-g/--lr-d, or resume "
                      "from an earlier checkpoint",
                  /*collective=*/true);
    // Every rank holds the same global model, so every rank reaches the same verdict.
    if (!torch::isfinite(trainer->global().g_flat().flat()).all().item<bool>() ||
        !torch::isfinite(trainer->global().d_flat().flat()).all().item<bool>())
      throw Error("round " + std::to_string(round) +
                      ": the global model holds NaN/inf after "
                      "the server step (--server-optimizer " +
                      options.federated.server.name + ", --server-lr " +
                      num(options.federated.server.lr) +
                      "); stopping "
                      "before it is saved",
                  /*collective=*/true);
    if (ema) {
      ema->update(trainer->global().g_flat().flat(), static_cast<int>(round));
      torch::NoGradGuard no_grad;
      ema_gan->g_flat().flat().copy_(ema->values());
    }
    const bool checkpoint_now = round % options.checkpoint_every == 0 || round == rounds;
    // Parties' own state (kept Adam moments, local BN) lives on their ranks: gather it first.
    const auto party_state = checkpoint_now ? gather_party_state(comm, *trainer)
                                            : std::map<std::string, torch::Tensor>{};
    // Rank 0 writes; a failure there (disk full) stops every rank.
    comm::collective_try(comm, [&] {
      if (!comm.is_root()) return;
      if (round % options.sample_every == 0 || round == rounds)
        io::write_png_grid(run.samples(round), sample_images(shown, options.federated.seed, 64), 8);
      if (checkpoint_now) {
        const auto ck = make_checkpoint(*trainer, round, config_text, party_state, ema_gan.get());
        io::write_checkpoint(run.checkpoint(round), ck);
        io::write_checkpoint(run.latest_checkpoint(), ck);
      }
    });
    std::vector<std::string> eval_cells(7);
    if (evaluator && (round % options.eval_every == 0 || round == rounds)) {
      eval::EvalOptions eo;
      eo.n = options.eval_n;
      eo.seed = options.federated.seed;
      // The evaluator runs on the CPU: a GPU model's values are copied to a CPU twin, built
      // once per run (building one draws weights from torch's global generator).
      if (!device.is_cpu()) {
        if (!eval_cpu_copy) eval_cpu_copy = std::make_unique<models::Gan>(model);
        eval_cpu_copy->copy_from(shown);
      }
      models::Gan& eval_gan = eval_cpu_copy ? *eval_cpu_copy : shown;
      const auto e = eval::evaluate_generator(comm, eval_gan.generator(), model,
                                              *evaluator, real_stats, eo,
                                              "round " + std::to_string(round));
      eval_cells = {num(e.fid_all), num(e.fid_avg), num(e.kid), num(e.precision),
                    num(e.recall), std::to_string(e.n), num(e.seconds)};
      if (comm.is_root())
        spdlog::info("round {} eval (n={}, evaluator {}): FID-all {:.3f} FID-avg {:.3f} KID {:.4f} "
                     "precision {:.3f} recall {:.3f} ({:.1f}s)",
                     round, e.n, options.evaluator, e.fid_all, e.fid_avg, e.kid, e.precision,
                     e.recall, e.seconds);
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    train_seconds += wall;
    if (comm.is_root()) {
      const double other = std::max(0.0, wall - r.own_local_s - r.wait_s - r.aggregate_s);
      const double ips = r.images / std::max(1e-9, r.local_s) / ranks;
      std::vector<std::string> row = {std::to_string(round), num(wall), num(r.local_s), num(r.wait_s),
                      num(r.aggregate_s),
                      num(other), num(r.d_loss), num(r.g_loss), std::to_string(r.parties),
                      std::to_string(r.skipped), std::to_string(r.samples),
                      std::to_string(r.images), num(ips)};
      row.insert(row.end(), eval_cells.begin(), eval_cells.end());
      row.push_back(options.federated.ada.target > 0 ? num(r.ada_p) : "");
      row.push_back(num(train::lr_factor(local.lr_schedule, static_cast<int>(round),
                                         local.schedule_rounds, local.lr_final_ratio)));
      metrics.append(row);
      const double eta = train_seconds / static_cast<double>(round - start_round) *
                         static_cast<double>(rounds - round);
      spdlog::info("{}round {}/{} | D {:.4f} G {:.4f} | parties {}{} | local {:.2f}s agg {:.4f}s "
                   "other {:.3f}s | {:.0f} img/s/rank | ETA {}",
                   progress_bar(round, rounds), round, rounds, r.d_loss, r.g_loss, r.parties,
                   r.skipped ? " (" + std::to_string(r.skipped) + " skipped)" : std::string(),
                   r.local_s, r.aggregate_s, other, ips, fmt_duration(eta));
    }
  }
  if (comm.is_root()) {
    const double total_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    spdlog::info("done in {}: checkpoint {}, samples {}", fmt_duration(total_s),
                 run.latest_checkpoint(), run.samples(rounds));
  }
  return 0;
}

}  // namespace fedgan::cli
