// TrainingRun's source-anchored fine-tuning (see training_run_impl.hpp and docs/DESIGN.md,
// "Transfer from a distant source"): the regularizers that hold the parties' generator to the
// warm start — KD (--kd-weight), EWC (--ewc-weight), cross-domain correspondence
// (--cdc-weight) — the settings they refuse, and EWC's Fisher information, computed once on
// rank 0 and broadcast.
#include "training_run_impl.hpp"

#include "fedgan/transfer/cdc.hpp"
#include "fedgan/transfer/ewc.hpp"
#include "fedgan/transfer/kd_regularizer.hpp"

namespace fedgan::run {
namespace {

constexpr std::uint64_t kEwcSeed = 0x657763;  // "ewc": the Fisher estimate's latents

bool wants_source(const RunConfig& c) {
  return c.local.kd_weight > 0 || c.ewc.weight > 0 || c.cdc_weight > 0;
}

}  // namespace

// The first setting the source regularizers cannot honour; "" when none.
std::string source_settings_problem(const RunConfig& c, const models::ModelConfig& model) {
  const bool ewc = c.ewc.weight > 0, cdc = c.cdc_weight > 0;
  if (!ewc && !cdc) return "";
  const std::string what = ewc ? "--ewc-weight" : "--cdc-weight";
  if (c.init.path.empty())
    return what + " needs --init: the pretrained model is the source it holds the generator to";
  if (c.federation == federated::Federation::Distill)
    return what + " with --federation distill is not implemented (G's loss is UA-GAN's)";
  if (!c.width_ratios.empty())
    return what + " with --width-ratios: a party's sub-model is not the source's shape";
  if (cdc && model.is_torchscript())
    return "--cdc-weight with --model torchscript: cross-domain correspondence compares the "
           "hidden blocks' activations, which a TorchScript generator does not expose";
  return "";
}

void TrainingRun::Impl::install_source_regularizers() {
  if (!wants_source(config)) return;
  if (config.ewc.weight > 0 || config.cdc_weight > 0)
    comm::run_on_root(comm, [&] {
      require(source_g_complete,
              std::string(config.ewc.weight > 0 ? "--ewc-weight" : "--cdc-weight") + ": " +
                  config.init.path +
                  " does not hold every value of this run's generator (another architecture? "
                  "see init_report.txt); the source the fine-tune is held to must be complete");
    });
  models::Gan& source = trainer->snapshot_source();
  const auto& l = config.local;
  if (l.kd_weight > 0)
    trainer->add_regularizer(
        std::make_shared<transfer::KdRegularizer>(source.generator_ptr(), l.kd_weight, l.kd_decay));
  if (config.cdc_weight > 0)
    trainer->add_regularizer(
        std::make_shared<transfer::CdcRegularizer>(source.generator_ptr(), config.cdc_weight));
  if (config.ewc.weight > 0) {
    const auto params = source.g_flat().parameters_view();
    auto fisher = torch::zeros({params.numel()});  // on the CPU for the broadcast
    comm::run_on_root(comm, [&] {
      require(source_d_complete,
              "--ewc-weight: " + config.init.path +
                  " holds no complete discriminator, and EWC's Fisher information is the "
                  "source discriminator's loss on the source generator's images");
      const auto t0 = std::chrono::steady_clock::now();
      fisher = transfer::generator_fisher(source, config.ewc.samples,
                                          data::derive_seed(config.federated.seed, kEwcSeed))
                   .cpu();
      const auto mean = fisher.to(torch::kFloat64).mean().item<double>();
      spdlog::info("EWC: the source generator's Fisher information from {} latents in {:.2f} s "
                   "(mean {:.4g}; the penalty uses F / mean)",
                   config.ewc.samples,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                   mean);
      transfer::normalised_fisher(fisher);  // refuses a zero or non-finite F here, on rank 0
    });
    comm.broadcast(fisher, 0);
    trainer->add_regularizer(std::make_shared<transfer::EwcRegularizer>(
        fisher.to(params.device()), params.clone(), config.ewc.weight));
  }
}

}  // namespace fedgan::run
