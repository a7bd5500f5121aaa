// TrainingRun's setup (see training_run_impl.hpp): the parties' data, the trainer and its DP
// transforms, the warm start, resume from a checkpoint, the generator EMA and the evaluator.
// Every step that can fail on one rank is agreed.
#include "training_run_impl.hpp"

#include "fedgan/models/torchscript.hpp"

namespace fedgan::run {
namespace {

struct DataInfo {
  std::int64_t parties = 0, channels = 0, size = 0, classes = 0;
  // /parties/<k>@width_ratio of every party (--width-ratios from the file); empty: none set.
  std::vector<double> width_ratio;
};

DataInfo read_training_data_info(const std::string& path) {
  h5::File file(path, h5::File::Mode::Read);
  DataInfo info;
  const auto shape = file.shape("/images");
  if (shape.size() != 4) throw Error(path + ": /images must be [N, C, H, W]");
  info.channels = shape[1];
  info.size = shape[2];
  if (shape[2] != shape[3])
    throw Error(path + ": images must be square, got " + std::to_string(shape[2]) + "x" +
                std::to_string(shape[3]));
  info.parties = file.attr_int("/parties", "num_parties").value_or(0);
  if (info.parties <= 0)
    throw Error(path + ": no partition (attribute /parties@num_parties); run `fedgan prepare`");
  info.classes = file.attr_int("/", "num_classes").value_or(0);
  // Width ratios, if the file gives them: every party's or none.
  std::int64_t first_missing = -1;
  for (std::int64_t k = 0; k < info.parties; ++k) {
    const auto r = file.attr_double("/parties/" + std::to_string(k), "width_ratio");
    if (r) info.width_ratio.push_back(*r);
    if (!r && first_missing < 0) first_missing = k;
  }
  if (!info.width_ratio.empty() && first_missing >= 0)
    throw Error(path + ": /parties/" + std::to_string(first_missing) +
                " has no attribute width_ratio, but " + std::to_string(info.width_ratio.size()) +
                " other parties have one (give every party its ratio, or none)");
  return info;
}

// Why these settings cannot train parties of different widths ("" when they can): what each
// combination would break.
std::string width_combination_problem(const RunConfig& o) {
  const auto& f = o.federated;
  if (o.model.g_mod_rank > 0)
    return "--width-ratios with --modulation-rank: a sub-model would need its slice of every "
           "modulation, which is not implemented; modulate a full-width federation";
  if (o.federation == federated::Federation::Distill)
    return "--width-ratios with --federation distill: distillation shares no weights, so there "
           "is nothing to slice; give the parties discriminators of their own size with "
           "--party-discriminators instead";
  if (o.secure_agg.enabled)
    return "--width-ratios with --secure-agg: the masked sum carries one weight, but each "
           "coordinate of a federation of widths is averaged over its own holders";
  if (o.dp.enabled)
    return "--width-ratios with --dp-clip: the noise is calibrated to one fixed denominator, "
           "and coordinates held by fewer parties would carry more noise than accounted";
  if (f.server.kind != federated::ServerOptimizerKind::FedAvg)
    return "--width-ratios with --server-optimizer " + federated::to_string(f.server.kind) +
           ": its momentum would move coordinates that no participant held";
  if (f.client.strategy != federated::ClientStrategy::FedAvg || f.client.prox_mu > 0)
    return "--width-ratios with --client-strategy " +
           federated::client_strategies().name(f.client.strategy) +
           (f.client.prox_mu > 0 ? " and --prox-mu" : "") +
           ": their per-party state and proximal terms are the global model's size";
  if (f.local_bn)
    return "--width-ratios with --local-bn: static BN (--width-bn static) already keeps the "
           "statistics off the aggregate";
  if (f.attack.active())
    return "--width-ratios with --attack: attacks exist to test the robust rules, which cannot "
           "aggregate sub-models";
  return "";
}

// Why the controller's rules (--auto) cannot steer these settings ("" when they can).
std::string controller_combination_problem(const RunConfig& o) {
  using federated::adapt::Rule;
  const auto& rules = o.federated.controller.rules;
  auto has = [&](Rule r) { return std::find(rules.begin(), rules.end(), r) != rules.end(); };
  const auto name = [](Rule r) { return federated::adapt::controller_rules().name(r); };
  const auto& f = o.federated;
  if (has(Rule::ServerLr) && f.server.kind != federated::ServerOptimizerKind::FedAvg &&
      f.server.kind != federated::ServerOptimizerKind::FedAvgM)
    return "--auto server-lr with --server-optimizer " + federated::to_string(f.server.kind) +
           ": the rule scales the mean update, and an adaptive server step divides that scale "
           "out again (use fedavg or fedavgm)";
  for (Rule r : {Rule::LocalSteps, Rule::Participation})
    if (has(r) && f.pacing.async())
      return "--auto " + name(r) + " with --async-buffer: the replay's arrivals are computed "
             "from the planned steps of every party, all of which train";
  if (has(Rule::Participation) && o.dp.enabled)
    return "--auto participation with --dp-clip: the accountant's epsilon holds for the fixed "
           "sampling rate q = --participation";
  if (has(Rule::Quarantine) && (o.dp.enabled || o.secure_agg.enabled))
    return std::string("--auto quarantine with ") + (o.dp.enabled ? "--dp-clip" : "--secure-agg") +
           ": the rule compares each party's update norm with the others', which no rank may "
           "learn under " + (o.dp.enabled ? "DP" : "secure aggregation");
  return "";
}

// Why these settings cannot pace the federation as asked ("" when they can): the pacing's own
// limits (pacing_problem), then what buffered asynchronous aggregation would break.
std::string pacing_combination_problem(const RunConfig& o, int parties) {
  const auto& f = o.federated;
  const auto& p = f.pacing;
  if (auto problem = federated::pacing_problem(p, parties); !problem.empty()) return problem;
  if (auto problem = controller_combination_problem(o); !problem.empty()) return problem;
  if (!p.async()) return "";
  const std::string no = "--async-buffer with ";
  if (p.compute_aware())
    return no + "--round-time-budget: asynchronous parties run their planned steps and the "
                "buffer, not a deadline, paces the server; choose one";
  if (f.participation < 1)
    return no + "--participation below 1: every party trains continuously, pulling the newest "
                "model when it finishes; a limit on concurrent parties is not built";
  if (o.dp.enabled)
    return no + "--dp-clip: the accountant's amplification by sampling assumes each round draws "
                "parties at random (Poisson, rate q); a buffer's members are set by their speed "
                "and a fast party reaches every buffer, so no epsilon could honestly be stated";
  if (o.secure_agg.enabled)
    return no + "--secure-agg: the pairwise masks are agreed among a round's parties before "
                "they train; a buffer's members are known only when they arrive and one party "
                "may arrive twice, so every buffer would need its own key agreement (not built)";
  if (f.widths.active() || !o.width_ratios.empty())
    return no + "--width-ratios: the width levels' coverage weights are not staleness-weighted";
  if (f.client.strategy != federated::ClientStrategy::FedAvg)
    return no + "--client-strategy " + federated::client_strategies().name(f.client.strategy) +
           ": its corrections (control variates, step normalisation) assume every update of a "
           "round was trained from the same global model";
  if (auto problem = federated::aggregator_settings_problem(f.aggregator, p.async_buffer, 1.0);
      !problem.empty())
    return "--async-buffer " + std::to_string(p.async_buffer) + ": each buffer aggregates " +
           std::to_string(p.async_buffer) + " updates, and " + problem;
  return "";
}

}  // namespace

// Family torchscript: rank 0 reads the archives (--generator and --discriminator; on resume
// without them, the latest checkpoint's /scripts), reads what they declare, checks the interface
// with one dry forward, and every rank receives the same bytes.
void TrainingRun::Impl::load_model_scripts() {
  const auto& o = config;
  if (!model.is_torchscript()) {
    comm.agree_ok(o.generator_script.empty() && o.discriminator_script.empty(),
                  "--generator and --discriminator give a TorchScript model: they need --model "
                  "torchscript (this run's model is " +
                      model.family + ")");
    return;
  }
  comm.agree_ok(!o.device.bf16,
                "--precision bf16 is not available for --model torchscript: LibTorch runs a "
                "TorchScript graph without autocast, so the model would silently stay float32");
  const bool given = !o.generator_script.empty() || !o.discriminator_script.empty();
  const std::string g_what = given ? o.generator_script + " (--generator)" : "the generator";
  const std::string d_what =
      given ? o.discriminator_script + " (--discriminator)" : "the discriminator";
  models::ScriptArchives archives;
  std::int64_t latent = model.latent_dim;
  comm::run_on_root(comm, [&] {
    if (given) {
      if (o.generator_script.empty() || o.discriminator_script.empty())
        throw Error("--model torchscript needs both --generator G.pt and --discriminator D.pt");
      const std::string expected = "a TorchScript archive from torch.jit.script(model).save(path)";
      archives.generator = io::read_file(o.generator_script, "--generator", expected);
      archives.discriminator = io::read_file(o.discriminator_script, "--discriminator", expected);
    } else if (resume) {
      const auto saved = io::read_checkpoint_model(run.latest_checkpoint());
      if (!saved.is_torchscript())
        throw Error(run.latest_checkpoint() + ": holds a " + saved.family +
                    " model, not a TorchScript one (--model torchscript)");
      archives = *saved.scripts;
    } else {
      throw Error(
          "--model torchscript needs --generator G.pt and --discriminator D.pt (TorchScript "
          "archives; examples/models/export_models.py makes them)");
    }
    auto scripts = models::load_scripts(archives, g_what, d_what);
    const auto info = models::inspect_scripts(scripts);
    if (info.conditional && !o.conditional)
      throw Error(g_what + ": forward takes (z, y): a conditional model; train it with "
                  "--conditional on labelled data");
    if (!info.conditional && o.conditional)
      throw Error("--conditional needs a conditional model: " + g_what +
                  " has forward(z), not forward(z, y)");
    if (info.conditional && info.num_classes && *info.num_classes != model.num_classes)
      throw Error(g_what + ": attribute num_classes = " + std::to_string(*info.num_classes) +
                  ", but " + o.data + " has " + std::to_string(model.num_classes) + " classes");
    if (info.latent_dim) latent = *info.latent_dim;
    models::ModelConfig probe = model;
    probe.latent_dim = static_cast<int>(latent);
    probe.script_id = archives.id();
    probe.validate();
    models::check_script_interface(scripts, probe);
    spdlog::info("TorchScript model: G {} values, D {} values, z of {}{}", info.g_values,
                 info.d_values, latent,
                 info.latent_dim ? " (G's latent_dim)" : " (--latent-dim; G has no latent_dim)");
  });
  comm.broadcast(archives.generator, 0);
  comm.broadcast(archives.discriminator, 0);
  comm.broadcast(&latent, sizeof(latent), 0);
  model.latent_dim = static_cast<int>(latent);
  model.set_scripts(std::move(archives));
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
  total_parties =
      o.parties_per_rank > 0 ? o.parties_per_rank * ranks : static_cast<int>(info.parties);
  comm.agree_ok(total_parties <= info.parties,
                o.data + ": has " + std::to_string(info.parties) + " parties, but " +
                    std::to_string(ranks) + " ranks x " + std::to_string(o.parties_per_rank) +
                    " parties per rank need " + std::to_string(total_parties));
  comm.agree_ok(total_parties >= ranks, o.data + ": has " + std::to_string(total_parties) +
                                            " parties, fewer than the " + std::to_string(ranks) +
                                            " ranks (each rank needs at least one party)");
  comm.agree_ok(!o.conditional || info.classes > 1,
                o.data + ": --conditional needs labels with num_classes > 1");
  // Width ratios: --width-ratios (cycled over the parties), else the file's.
  auto& widths = config.federated.widths;
  widths.party_ratio.clear();
  if (!o.width_ratios.empty()) {
    for (int k = 0; k < total_parties; ++k)
      widths.party_ratio.push_back(o.width_ratios[static_cast<std::size_t>(k) % o.width_ratios.size()]);
  } else if (!info.width_ratio.empty()) {
    widths.party_ratio.assign(info.width_ratio.begin(), info.width_ratio.begin() + total_parties);
  }
  if (widths.active()) {
    const std::string problem = width_combination_problem(o);
    comm.agree_ok(problem.empty(), problem);
  }
  // Robust aggregation and attacks against the party count (the same verdict on every rank).
  const std::string aggregation =
      aggregator_settings_problem(o.federated.aggregator, total_parties, o.federated.participation);
  comm.agree_ok(aggregation.empty(), aggregation);
  const std::string pacing = pacing_combination_problem(o, total_parties);
  comm.agree_ok(pacing.empty(), pacing);
  comm::collective_try(comm, [&] { check_attackers(o.federated.attack, total_parties); });
  model = o.model;
  model.channels = static_cast<int>(info.channels);
  model.image_size = static_cast<int>(info.size);
  model.num_classes = o.conditional ? static_cast<int>(info.classes) : 0;
  load_model_scripts();
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

// The round's aggregator, made in FederatedTrainer's constructor: secure FedAvg (privacy) under
// --secure-agg, else the rule of --aggregator. The secure-aggregation settings are checked there
// too, after the fine-tuning plans.
federated::AggregatorFactory TrainingRun::Impl::aggregator_factory() const {
  return [secure = config.secure_agg, rule = config.federated.aggregator,
          parties = total_parties, participation = config.federated.participation,
          rounds = config.federated.rounds](std::vector<std::int64_t> sizes,
                                            const torch::Device& device, comm::Communicator& c) {
    privacy::check_secure_agg(secure, parties, participation, rounds);
    if (secure.enabled)
      return privacy::make_secure_fedavg_aggregator(secure, rule, std::move(sizes), device, c);
    return federated::make_aggregator(rule, std::move(sizes), device, c);
  };
}

void TrainingRun::Impl::make_trainer(std::vector<LocalParty> parties) {
  FederatedConfig fed = config.federated;
  fed.device = rank_device.device;
  fed.aggregator_factory = aggregator_factory();
  // Under DP the accountant assumes Poisson sampling at rate q = --participation.
  fed.poisson_sampling = config.dp.enabled;
  // Secure aggregation and DP: no rank learns one party's update norm (the round's party table).
  fed.share_update_norms = !config.dp.enabled && !config.secure_agg.enabled;
  if (config.dp.enabled) {
    make_dp(parties);
    // Noised BatchNorm variances below zero would make eval-mode samples NaN (post-processing,
    // after each server step and before the round's model check).
    fed.after_server_step = [](models::Gan& gan) {
      for (auto* flat : {&gan.g_flat(), &gan.d_flat()})
        privacy::clamp_running_variances(*flat, privacy::kRunningVarFloor);
    };
  }
  comm::Communicator& round_comm = rank_device.round_comm(comm);
  trainer = comm::collective_try(comm, [&] {
    return std::make_unique<FederatedTrainer>(round_comm, model, config.local, fed,
                                              std::move(parties), total_parties, config.debug);
  });
  if (dp) {
    // After the client strategy's transforms (SCAFFOLD's variates and FedNova's normalisation
    // see the raw update), and before aggregation, so secure aggregation masks clipped,
    // noised updates.
    trainer->add_update_transform(dp->update_transform());
    trainer->add_aggregate_transform(dp->aggregate_transform());
  }
  comm.agree_ok(config.local.kd_weight == 0 || !config.init.path.empty(),
                "--kd-weight needs --init: the pretrained generator is the teacher");
  const std::string source = source_settings_problem(config, model);
  comm.agree_ok(source.empty(), source);
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
  comm.agree_ok(config.federated.aggregator.rule == federated::AggregationRule::FedAvg,
                "--dp-clip: the noise is calibrated to a sum of clipped updates; use --aggregator "
                "fedavg (not " +
                    federated::to_string(config.federated.aggregator.rule) + ")");
  comm.agree_ok(!(c.noise == privacy::NoiseMode::Distributed && config.federated.skip_nonfinite),
                "--dp-noise distributed with --skip-nonfinite: a skipped party's share of the "
                "noise would be missing from the sum (use --dp-noise central, or drop "
                "--skip-nonfinite)");
  auto plan = comm::collective_try(
      comm, [&] { return privacy::make_dp_plan(c, config.federated.participation, sizes); });
  if (comm.is_root() && c.noise_multiplier == 0)
    spdlog::warn(
        "--dp-noise-multiplier 0: updates are clipped but not noised; epsilon is "
        "infinite (no privacy guarantee)");
  dp = std::make_unique<privacy::DpFedAvg>(comm, std::move(plan));
}

// Warm start: rank 0 reads the pretrained model and loads what matches by name and shape.
void TrainingRun::Impl::warm_start() {
  const auto& init = config.init;
  if (!init.path.empty()) {
    comm::run_on_root(comm, [&] {
      auto pre = transfer::read_pretrained(init.path, init.prefix_map);
      // A modulated source (--modulation-rank) into an unmodulated G: its kernels with the
      // modulation folded in, W ⊙ (1 + B Aᵀ), which is what the source computes.
      if (model.g_mod_rank == 0) pre.generator = models::fold_modulation(std::move(pre.generator));
      auto g = transfer::load_partial(trainer->global().g_flat(), pre.generator);
      auto d = transfer::load_partial(trainer->global().d_flat(), pre.discriminator);
      const std::string report =
          "warm start from " + init.path + "\n" + g.text("generator") + d.text("discriminator");
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
        throw Error(init.path +
                    ": --init-strict: the checkpoint does not match this model "
                    "exactly (see " +
                    config.out + "/init_report.txt)");
      source_g_complete = g.loaded_numel == g.total_numel;
      source_d_complete = d.loaded_numel == d.total_numel;
      if (g.loaded.empty() && d.loaded.empty())
        throw Error(init.path + ": no tensor matches this model by name and shape");
    });
    trainer->broadcast_global(0);
    install_source_regularizers();
  }
  if (comm.is_root() && trainer->widths()) {
    const auto& w = *trainer->widths();
    spdlog::info("width levels ({} slicing, {} BN, scaler {}): each party trains its ratio of "
                 "every hidden layer's channels\n{}",
                 federated::width_slicings().name(w.config().slicing),
                 federated::width_bns().name(w.config().bn), w.config().scaler ? "on" : "off",
                 w.cost_table());
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
  StateParts state;
  std::map<std::string, torch::Tensor> privacy_state;
  const auto latest = run.latest_checkpoint();
  comm::run_on_root(comm, [&] {
    auto ck = io::read_checkpoint(latest);
    if (ck.architecture != model.to_string())
      throw Error(latest + ": checkpoint architecture '" + ck.architecture +
                  "' differs from this run's '" + model.to_string() + "'");
    const auto widths = trainer->widths();
    const std::string now = widths ? widths->config().to_string() : "";
    if (ck.widths != now)
      throw Error(latest + ": the run being resumed trained " +
                  (ck.widths.empty() ? "every party at full width" : "widths '" + ck.widths + "'") +
                  ", this run " + (now.empty() ? "every party at full width" : "widths '" + now + "'") +
                  " (--width-ratios, --width-bn, --width-scaler, --width-slicing, --width-average or the "
                  "dataset's "
                  "/parties/<k>@width_ratio): a checkpoint resumes only with its own ratio set");
    io::load_strict(trainer->global().g_flat(), ck.generator, "generator", latest);
    io::load_strict(trainer->global().d_flat(), ck.discriminator, "discriminator", latest);
    start_round = ck.round;
    state = split_state(ck.state);
    for (const auto& [k, v] : ck.state)
      if (k.rfind(io::keys::kPrivacy, 0) == 0) privacy_state[k] = v;
  });
  comm.broadcast(&start_round, sizeof(start_round), 0);
  last_checkpoint = start_round;
  comm::broadcast_tensors(comm, privacy_state, 0);
  comm.agree_ok(dp || privacy_state.empty(),
                latest +
                    ": the run being resumed is differentially private (it holds an "
                    "epsilon account): resume it with its --dp-* options");
  if (dp) comm::collective_try(comm, [&] { dp->load_state(privacy_state); });
  comm::broadcast_tensors(comm, state.server, 0);
  trainer->load_server_state(state.server);
  if (distill) comm::collective_try(comm, [&] { distill->load_server_state(state.server); });
  if (auto it = state.server.find(io::keys::kGRaw); it != state.server.end())
    resumed_g_raw = it->second;
  if (has_party_state()) {
    comm::broadcast_tensors(comm, state.party, 0);
    comm::collective_try(comm, [&] {
      trainer->load_party_state_tensors(state.party);
      if (distill) distill->load_party_state_tensors(state.party);
    });
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

// Evaluation: every rank loads the evaluator; real statistics are cached per dataset.
void TrainingRun::Impl::load_evaluator() {
  comm.agree_ok(config.eval_every == 0 || !config.evaluator.empty(),
                "--eval-every needs --evaluator FILE (make one with `fedgan evaluator`)");
  if (config.eval_every == 0) return;
  comm::collective_try(comm, [&] { evaluator.emplace(eval::Evaluator::load(config.evaluator)); });
  // The generator makes images of the data's shape: the evaluator must read that shape.
  comm::collective_try(comm, [&] {
    evaluator->check_image_shape(model.channels, model.image_size, model.image_size,
                                 config.data + " (model " + model.to_string() + ")");
  });
  // Checked now rather than at the first evaluation, after rounds of training.
  const auto need = std::max(evaluator->feature_dim(), eval::EvalOptions{}.knn);
  comm.agree_ok(config.eval_n > need, "--eval-n " + std::to_string(config.eval_n) +
                                          ": FID needs more samples than the evaluator's " +
                                          std::to_string(evaluator->feature_dim()) +
                                          " features, and precision/recall more than k = " +
                                          std::to_string(eval::EvalOptions{}.knn) +
                                          "; use --eval-n " + std::to_string(need + 1) +
                                          " or more (2000+ for comparable figures)");
  real_stats = eval::load_or_compute_real_stats(
      comm, config.eval_data.empty() ? config.data : config.eval_data, *evaluator);
}

}  // namespace fedgan::run
