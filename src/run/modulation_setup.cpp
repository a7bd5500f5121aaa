// AdAM's kernel modulation in a run (--modulation-rank; transfer/modulation.hpp): which filters'
// modulations train, decided before the trainer exists so that its plans freeze the rest from
// round 1 on (frozen values never enter the aggregate). The mask comes from the checkpoint on
// resume, from --modulation-mask, or from the federated importance probe: every party probes on
// its own rank and data, one float64 allreduce combines the scores.
#include "fedgan/io/checkpoint_keys.hpp"
#include "fedgan/transfer/modulation.hpp"
#include "training_run_impl.hpp"

namespace fedgan::run {
namespace {

// "probe" as a seed word: party k's probe draws from derive_seed(seed, "probe", k).
constexpr std::uint64_t kProbeSeedWord = 0x70726f6265;

// Why these settings cannot probe or modulate ("" when they can).
std::string modulation_problem(const RunConfig& o, const models::ModelConfig& model, bool probe) {
  if (o.init.path.empty())
    return "--modulation-rank needs --init: the modulation adapts a pretrained (source) "
           "generator, whose kernels stay fixed";
  if (model.is_torchscript())
    return "--modulation-rank with --model torchscript: fedgan modulates only the built-in "
           "dcgan generator's kernels";
  if (o.federation != federated::Federation::FedAvg)
    return "--modulation-rank with --federation distill: distillation trains the whole "
           "generator on the server";
  if (probe && o.dp.enabled)
    return "--modulation-probe-steps with --dp-clip: the probe's scores come from the parties' "
           "data outside the DP account; give --modulation-probe-steps 0 or a --modulation-mask";
  if (probe && o.secure_agg.enabled)
    return "--modulation-probe-steps with --secure-agg: the probe's scores are summed in the "
           "clear; give --modulation-probe-steps 0 or a --modulation-mask";
  return "";
}

}  // namespace

void TrainingRun::Impl::plan_modulation(const std::vector<LocalParty>& parties) {
  const auto& mc = config.modulation;
  if (model.g_mod_rank == 0) {
    comm.agree_ok(mc.mask_file.empty(), "--modulation-mask " + mc.mask_file +
                                            ": a mask of filters needs --modulation-rank");
    return;
  }
  const bool probe = !resume && mc.mask_file.empty() && mc.probe_steps > 0;
  const std::string problem = modulation_problem(config, model, probe);
  comm.agree_ok(problem.empty(), problem);
  // The model the trainer will build (same seed, same draws): its B is the probe's.
  torch::manual_seed(config.federated.seed);
  models::Gan source(model, rank_device.device);
  const auto layers = models::modulated_layers(source.g_flat());
  const auto filters = transfer::total_filters(layers);
  torch::Tensor mask = torch::ones({filters}, torch::kInt64), scores;
  std::string from = "no probe (--modulation-probe-steps 0): every filter";
  if (resume) {
    const auto latest = run.latest_checkpoint();
    comm::run_on_root(comm, [&] {
      const std::string key =
          std::string("/state/") + io::keys::kServer + io::keys::kModulationMask;
      h5::File f(latest, h5::File::Mode::Read);
      if (!f.exists(key))
        throw Error(latest + ": has no " + key +
                    ": the run being resumed had no kernel "
                    "modulation (--modulation-rank)");
      mask = f.read(key).to(torch::kInt64);
      transfer::check_modulation_mask(mask, latest + " " + key, layers);
    });
    from = "the checkpoint";
  } else if (!mc.mask_file.empty()) {
    comm::run_on_root(comm, [&] {
      auto m = transfer::read_modulation_mask(mc.mask_file, "--modulation-mask", model.to_string(),
                                              layers);
      mask = m.mask.to(torch::kInt64);
    });
    from = mc.mask_file;
  } else if (probe) {
    scores = probe_importance(parties, source, layers);
    mask = transfer::select_filters(scores, layers, mc.keep);
    from = "the probe (" + std::to_string(mc.probe_steps) + " steps per party)";
  }
  comm.broadcast(mask, 0);
  modulation_mask = mask;
  transfer::add_modulation_masks(config.federated.freeze_g, layers, mask);
  comm::run_on_root(comm, [&] {
    std::string per_layer;
    for (std::size_t i = 0, first = 0; i < layers.size(); first += layers[i].filters, ++i)
      per_layer += fmt::format("{}{} {}/{}", i ? ", " : "", layers[i].prefix,
                               mask.narrow(0, first, layers[i].filters).sum().item<std::int64_t>(),
                               layers[i].filters);
    spdlog::info(
        "kernel modulation (AdAM) of rank {}: {} of {} filters train, from {} ({}); G's "
        "base stays the source's",
        model.g_mod_rank, mask.sum().item<std::int64_t>(), filters, from, per_layer);
    if (resume) return;
    transfer::ModulationMask file;
    file.mask = mask;
    file.scores = scores;
    file.architecture = model.to_string();
    file.keep = mc.keep;
    file.probe_steps = probe ? mc.probe_steps : 0;
    for (const auto& l : layers) file.layers.push_back(l.prefix);
    transfer::write_modulation_mask(config.out + "/modulation_mask.h5", file);
  });
}

// The probe: each hosted party runs --modulation-probe-steps local steps from the source with
// every modulation trainable (the base frozen, D as in training), accumulating each filter's
// Fisher; the parties' means, weighted by n_k, are summed over ranks in one float64 allreduce.
// The probe's models are thrown away: training starts from the source.
torch::Tensor TrainingRun::Impl::probe_importance(
    const std::vector<LocalParty>& parties, models::Gan& source,
    const std::vector<models::ModulatedLayer>& layers) {
  const auto& init = config.init;
  comm::run_on_root(comm, [&] {
    auto pre = transfer::read_pretrained(init.path, init.prefix_map);
    transfer::load_partial(source.g_flat(), pre.generator);
    transfer::load_partial(source.d_flat(), pre.discriminator);
  });
  comm.broadcast(source.g_flat().flat(), 0);
  comm.broadcast(source.d_flat().flat(), 0);
  const auto filters = transfer::total_filters(layers);
  auto local_config = config.local;
  local_config.local_steps = config.modulation.probe_steps;
  train::LocalTrainer trainer(local_config);
  if (config.federated.ada.target > 0)
    trainer.set_augment_probability(config.federated.ada.initial_p);
  auto fisher = std::make_shared<transfer::FisherProbe>(layers);
  trainer.add_regularizer(fisher);
  models::Gan local(model, rank_device.device);
  auto g_config = config.federated.freeze_g;
  transfer::add_modulation_masks(g_config, layers, torch::ones({filters}, torch::kInt64));
  const auto g_plan = transfer::make_plan(local.g_flat(), local.generator().block_prefixes(),
                                          g_config, "generator");
  const auto d_plan = transfer::make_plan(local.d_flat(), local.discriminator().block_prefixes(),
                                          config.federated.freeze_d, "discriminator");
  // [Σ n_k F_k (per filter) | Σ n_k]
  auto sums = torch::zeros({filters + 1}, torch::kFloat64);
  std::int64_t bad_party = -1;
  for (const auto& party : parties) {
    local.copy_from(source);
    auto opt = train::make_party_optimizers(local, local_config);
    opt.g.set_lr_scale(g_plan.lr_scale.to(rank_device.device));
    if (!d_plan.identity) opt.d.set_lr_scale(d_plan.lr_scale.to(rank_device.device));
    trainer.begin_party({party.id, 0, &source});
    auto gen = compat::make_generator(data::derive_seed(config.federated.seed, kProbeSeedWord,
                                                        static_cast<std::uint64_t>(party.id)),
                                      rank_device.device);
    // Epoch 0 is no round's (round t's epochs start at t·local_epochs, or t·10⁶ with steps).
    const auto result = trainer.run(local, opt, *party.data, 0, gen);
    const double n = static_cast<double>(party.data->size());
    const auto mean = fisher->mean();
    if (!result.finite || !torch::isfinite(mean).all().item<bool>()) {
      if (bad_party < 0) bad_party = party.id;
      continue;
    }
    // As the round's float32 updates (DESIGN.md, "Why float64"): n_k times a float32 value is
    // exact in float64, and the float32 rounding of the mean hides the sum's order (the ranks).
    sums.narrow(0, 0, filters) += n * mean.to(torch::kFloat32).to(torch::kFloat64);
    sums[filters] += n;
  }
  comm.agree_ok(bad_party < 0, "--modulation-probe-steps: party " + std::to_string(bad_party) +
                                   "'s probe gave non-finite losses or gradients (lower the "
                                   "learning rates, or give --modulation-probe-steps 0)");
  comm.allreduce_sum(sums);
  return (sums.narrow(0, 0, filters) / sums[filters]).to(torch::kFloat32).to(torch::kFloat64);
}

}  // namespace fedgan::run
