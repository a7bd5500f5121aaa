// `fedgan train`: options of a federated run (model, local training, rounds, run directory).
#include "fedgan/cli/command.hpp"
#include "fedgan/cli/run_settings.hpp"
#include "fedgan/cli/train_options.hpp"
#include "fedgan/cli/validators.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/federated/aggregation/aggregator.hpp"
#include "fedgan/federated/attacks/attack.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/train/augment.hpp"
#include "fedgan/privacy/secagg_config.hpp"
#include "fedgan/transfer/freeze_policy.hpp"
#include "fedgan/transfer/warm_start.hpp"

namespace fedgan::cli {
namespace {

// --attack and --attackers checked on their own (their pairing is checked with the run's
// settings); the message drops the flag name, which CLI11 puts in front.
CLI::Validator attack_validator(bool attackers) {
  return CLI::Validator(
      [attackers](std::string& input) -> std::string {
        if (input.empty() || (!attackers && input == "none")) return {};
        try {
          if (attackers)
            federated::parse_attack("nan", input);
          else
            federated::parse_attack(input, "0");
        } catch (const Error& e) {
          std::string text = e.what();
          const auto colon = text.find(": ");
          return colon == std::string::npos ? text : text.substr(colon + 2);
        }
        return {};
      },
      attackers ? "party ids" : "attack");
}

// --attack's help from its table: "none, sign-flip, scale:K, gaussian:SIGMA (noise), nan".
std::string attack_help() {
  std::string list;
  for (const auto& k : federated::attack_kinds()) {
    list += std::string(list.empty() ? "" : ", ") + k.name;
    if (k.parameter) list += std::string(":") + k.parameter;
    if (*k.help) list += std::string(" (") + k.help + ")";
  }
  return "(testing robust aggregation) what the --attackers send instead of their update: " + list;
}

std::vector<std::string> allow_change_keys() {
  auto keys = run_defining_settings();
  keys.push_back("all");
  return keys;
}

CLI::Validator lr_mult_list(const std::string& option) {
  return parsed_by([option](const std::string& s) { transfer::parse_lr_mult(s, option); }, option,
                   "PREFIX=MULT,...");
}

// Limited-data GAN training (docs/reference.md, "Small data"): augmentation, ADA, R1, schedule,
// G EMA.
void add_small_data_options(CLI::App& sub, TrainOptions& o) {
  run::RunConfig& r = o.run;
  sub.add_option("--diffaug", o.diffaug,
                 "DiffAugment (Zhao et al. 2020) on every image D sees, real and generated: a "
                 "comma-separated list of " +
                     choice_help("", train::augment_words(), "or none"))
      ->capture_default_str()
      ->check(parsed_by([](const std::string& s) { train::AugmentPolicy::parse(s); }, "--diffaug",
                        "POLICY"));
  sub.add_option("--ada-target", r.federated.ada.target,
                 "ADA (Karras et al. 2020): adapt the augmentation probability p so that "
                 "E[sign(D(real))] approaches this target (0.6 in the paper); one p for all "
                 "parties; needs --diffaug; 0: off (p = 1)")
      ->capture_default_str()
      ->check(in_range(0, 1, End::Closed, End::Open));
  sub.add_option("--ada-kimg", r.federated.ada.kimg,
                 "ADA's speed: thousands of real images (per party) for p to go from 0 to 1")
      ->capture_default_str()
      ->check(positive_float());
  sub.add_option("--r1-gamma", r.local.r1_gamma,
                 "R1 penalty (Mescheder et al. 2018): gamma/2 E|grad D(real)|^2 in D's loss; "
                 "0: off")
      ->capture_default_str()
      ->check(non_negative_float());
  sub.add_option("--r1-every", r.local.r1_every, "lazy R1: every N-th D step, weighted by N")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  add_choice(sub, o.lr_schedule, train::lr_schedules(), "local learning rates over the rounds");
  sub.add_option("--lr-final", r.local.lr_final_ratio,
                 "the last round's fraction of the learning rates (--lr-schedule)")
      ->capture_default_str()
      ->check(in_range(0, 1, End::Open));
  sub.add_option("--g-ema", r.g_ema,
                 "moving average of the global generator, beta per round, updated after each "
                 "round's server step; sample grids, evaluation and checkpoints' /generator use "
                 "it (the trained G is kept for resume); 0: off")
      ->capture_default_str()
      ->check(in_range(0, 1, End::Closed, End::Open));
}

// Options: the run: data, output folder, resume, rounds and who takes part.
void add_run_options(CLI::App& sub, TrainOptions& options) {
  TrainOptions& o = options;
  run::RunConfig& r = options.run;
  // A repeated option takes its last value, so scripts can override a base command line.
  sub.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  sub.add_option("--data", r.data, "dataset file from `fedgan prepare`")->required();
  sub.add_option("--out", r.out, "run directory")->capture_default_str();
  sub.add_option("--resume", o.resume,
                 "continue the run in --out from checkpoints/latest.h5 (default no; `--resume` "
                 "alone means yes); `--resume auto` resumes when it exists and starts fresh "
                 "otherwise (Slurm requeue). The settings that define the run (data, seed, "
                 "parties, model, loss, server optimizer, warm start, freezing) must match the "
                 "checkpoint's")
      // No default string: CLI11 2.1 gives an option of 0..1 values its default string when it
      // comes alone, which --help then showed as "=yes" although the default is no.
      ->expected(0, 1)
      ->check(one_of(run::resume_modes()));
  sub.add_option("--allow-change", o.allow_change,
                 "with --resume: settings that may differ from the resumed run's, e.g. data "
                 "(the dataset file moved) or seed; `all` accepts any change")
      ->delimiter(',')
      ->check(CLI::IsMember(allow_change_keys()));
  sub.add_flag("--force", r.force, "start over in an --out that holds another run");
  sub.add_option("--rounds", r.federated.rounds, "federated rounds")
      ->capture_default_str()
      ->check(positive());
  sub.add_option("--participation", r.federated.participation,
                 "fraction of parties drawn each round (same draw on every rank)")
      ->capture_default_str()
      ->check(in_range(0, 1, End::Open));
  sub.add_option("--parties-per-rank", r.parties_per_rank,
                 "virtual parties per rank (0: all parties of the file over the ranks)")
      ->capture_default_str()
      ->check(non_negative());
}

// Options: each party's local training: steps, batch, optimizers, loss, party state.
void add_local_options(CLI::App& sub, TrainOptions& options) {
  TrainOptions& o = options;
  run::RunConfig& r = options.run;
  sub.add_option("--local-epochs", r.local.local_epochs, "local epochs per round")
      ->capture_default_str()
      ->check(non_negative());
  sub.add_option("--local-steps", r.local.local_steps,
                 "local steps per round (overrides --local-epochs when > 0)")
      ->capture_default_str()
      ->check(non_negative());
  sub.add_option("--batch-size", r.local.batch_size, "")->capture_default_str()->check(positive());
  sub.add_option("--d-steps", r.local.d_steps, "D updates per G update")
      ->capture_default_str()
      ->check(positive());
  sub.add_option("--lr-g", r.local.lr_g, "generator Adam learning rate")
      ->capture_default_str()
      ->check(positive_float());
  sub.add_option("--lr-d", r.local.lr_d, "discriminator Adam learning rate")
      ->capture_default_str()
      ->check(positive_float());
  sub.add_option("--beta1", r.local.beta1, "")
      ->capture_default_str()
      ->check(in_range(0, 1, End::Closed, End::Open));
  sub.add_option("--beta2", r.local.beta2, "")
      ->capture_default_str()
      ->check(in_range(0, 1, End::Closed, End::Open));
  add_choice(sub, o.loss, models::losses(), "the GAN objective");
  sub.add_option("--gp-weight", r.local.gp_weight, "WGAN-GP penalty weight")
      ->capture_default_str()
      ->check(non_negative_float());
  add_choice(sub, o.optimizer_state, federated::optimizer_states(), "each party's Adam state");
  sub.add_flag("--local-bn", r.federated.local_bn,
               "keep BatchNorm running statistics per party (the global model gets the mean)");
  sub.add_flag("--skip-nonfinite", r.federated.skip_nonfinite,
               "drop a party whose update is NaN/inf instead of stopping the run");
}

// Options: the server step and the client strategy.
void add_strategy_options(CLI::App& sub, TrainOptions& options) {
  TrainOptions& o = options;
  run::RunConfig& r = options.run;
  add_choice(sub, o.server_optimizer, federated::server_optimizers(),
             "how the server moves the global model by the round's mean update");
  sub.add_option("--server-lr", r.federated.server.lr, "server step size")
      ->capture_default_str()
      ->check(positive_float());
  sub.add_option("--server-momentum", r.federated.server.momentum, "fedavgm momentum")
      ->capture_default_str()
      ->check(in_range(0, 1, End::Closed, End::Open));
  sub.add_option("--server-beta1", r.federated.server.beta1,
                 "first-moment decay of fedadam, fedyogi, fedadagrad")
      ->capture_default_str()
      ->check(in_range(0, 1, End::Closed, End::Open));
  sub.add_option("--server-beta2", r.federated.server.beta2,
                 "second-moment decay of fedadam and fedyogi")
      ->capture_default_str()
      ->check(in_range(0, 1, End::Closed, End::Open));
  sub.add_option("--server-tau", r.federated.server.tau,
                 "adaptivity of fedadam, fedyogi, fedadagrad: x += lr·m/(sqrt(v) + tau)")
      ->capture_default_str()
      ->check(positive_float());
  add_choice(sub, o.client_strategy, federated::client_strategies(),
             "how parties train and what their updates mean");
  sub.add_option("--prox-mu", r.federated.client.prox_mu,
                 "FedProx (Li et al. 2020): weight mu of the proximal term mu/2 |w - w_global|^2 "
                 "in every party's local objective, G and D; 0: none")
      ->capture_default_str()
      ->check(non_negative_float());
}

// Options: how updates are combined: the rule, secure aggregation, simulated attacks.
void add_aggregation_options(CLI::App& sub, TrainOptions& options) {
  TrainOptions& o = options;
  run::RunConfig& r = options.run;
  add_choice(sub, o.aggregator, federated::aggregation_rules(),
             "how the round's updates are combined");
  sub.add_flag("--secure-agg", r.secure_agg.enabled,
               "secure aggregation (Bonawitz et al. 2017): each party's update is clamped to "
               "--secagg-range, encoded in fixed point and masked pairwise (X25519 + ChaCha20), so "
               "ranks see only the sum; needs --aggregator fedavg");
  sub.add_option("--secagg-range", r.secure_agg.range,
                 "with --secure-agg: bound B on each value of a party's update (values beyond are "
                 "clamped and counted); sets the fixed-point scale so the sum cannot wrap; 0: "
                 "from --dp-clip C (C, or C + 10*z*C/sqrt(m) with distributed noise), required "
                 "without DP")
      ->capture_default_str()
      ->check(non_negative_float());
  sub.add_option("--secagg-threshold", r.secure_agg.threshold,
                 "with --secure-agg: Shamir threshold as a fraction f of the round's m parties, "
                 "t = max(2, floor(f*m)+1); dropped parties are recovered while t survive")
      ->capture_default_str()
      ->check(in_range(0, 1, End::Open, End::Closed));
  sub.add_option("--secagg-drop", o.secagg_drop,
                 "with --secure-agg: simulate party P failing after masking in round R (P@R, "
                 "comma-separated or repeated); it is recovered from the survivors' shares")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->check(parsed_by(
          [](const std::string& s) {
            if (!s.empty()) privacy::parse_secagg_drop(s);  // "" is none (as config.toml writes)
          },
                        "--secagg-drop", "PARTY@ROUND"));
  sub.add_option("--trim-beta", r.federated.aggregator.trim_beta,
                 "trimmed-mean: drop floor(beta*m) of the m values at each end of every "
                 "coordinate; refused when that is 0 for the parties of a round (beta < 1/m)")
      ->capture_default_str()
      ->check(in_range(0, 0.5, End::Closed, End::Open));
  sub.add_option("--krum-f", r.federated.aggregator.krum_f,
                 "krum, multi-krum: hostile parties tolerated (needs more than 2f+2 parties in a "
                 "round)")
      ->capture_default_str()
      ->check(non_negative());
  sub.add_option("--krum-m", r.federated.aggregator.krum_m,
                 "multi-krum: updates averaged, the m with the best Krum scores (0: P - f)")
      ->capture_default_str()
      ->check(non_negative());
  sub.add_option("--attack", o.attack, attack_help())
      ->capture_default_str()
      ->check(attack_validator(false));
  sub.add_option("--attackers", o.attackers,
                 "(testing) the attacking parties' ids, comma-separated, e.g. 0,3")
      ->capture_default_str()
      ->check(attack_validator(true));
}

// Options: the seed and the model.
void add_model_options(CLI::App& sub, TrainOptions& options) {
  TrainOptions& o = options;
  run::RunConfig& r = options.run;
  sub.add_option("--seed", r.federated.seed, "seed of every random draw")->capture_default_str();
  sub.add_option("--latent-dim", r.model.latent_dim, "size of z")
      ->capture_default_str()
      ->check(CLI::Range(1, models::kMaxModelWidth));
  sub.add_option("--g-width", r.model.g_width, "generator base width")
      ->capture_default_str()
      ->check(CLI::Range(2, models::kMaxModelWidth));
  sub.add_option("--d-width", r.model.d_width, "discriminator base width")
      ->capture_default_str()
      ->check(CLI::Range(1, models::kMaxModelWidth));
  add_choice(sub, o.d_norm, models::d_norms(), "D's normalisation");
  sub.add_option("--model", r.model.family, "model family")
      ->capture_default_str()
      ->check(CLI::IsMember(models::ModelRegistry::instance().families()));
  sub.add_flag("--conditional", r.conditional, "label-conditional G (embedding) and D (projection)");
  sub.add_option("--generator", r.generator_script,
                 "--model torchscript: the generator, a TorchScript archive "
                 "(torch.jit.script(G).save); rank 0 reads it, all ranks get it");
  sub.add_option("--discriminator", r.discriminator_script,
                 "--model torchscript: the discriminator, a TorchScript archive");
}

// Options: devices, collectives, precision and the step form.
void add_device_options(CLI::App& sub, TrainOptions& options) {
  TrainOptions& o = options;
  run::RunConfig& r = options.run;
  add_choice(sub, o.device, device_kinds(), "where each rank computes",
             "a rank's GPU is its rank on the node modulo the visible GPUs");
  add_choice(sub, o.comm, comm_kinds(), "how GPU models are summed");
  add_choice(sub, o.precision, precisions(), "the arithmetic of forward passes");
  sub.add_flag("--deterministic", r.device.deterministic,
               "GPU: only deterministic algorithms (an op without one is an error); the CPU "
               "is always deterministic");
  add_choice(sub, o.g_fake, train::g_fake_choices(), "the G step's fake batch");
}

// Options: limited-data training, then checkpoints, sample grids, evaluation and the test hooks.
void add_output_options(CLI::App& sub, TrainOptions& options) {
  TrainOptions& o = options;
  run::RunConfig& r = options.run;
  add_small_data_options(sub, o);
  sub.add_option("--checkpoint-every", r.checkpoint_every, "rounds between checkpoints")
      ->capture_default_str()
      ->check(positive());
  sub.add_option("--sample-every", r.sample_every,
                 "rounds between sample grids (and one at the last round); 0: never")
      ->capture_default_str()
      ->check(non_negative());
  sub.add_option("--eval-every", r.eval_every,
                 "rounds between evaluations (FID-all, FID-avg, KID, precision/recall in "
                 "metrics.csv); 0: never")
      ->capture_default_str()
      ->check(non_negative());
  sub.add_option("--evaluator", r.evaluator, "evaluator file from `fedgan evaluator`");
  sub.add_option("--eval-data", r.eval_data,
                 "the real images evaluation compares with (a `fedgan prepare` file; default "
                 "--data), e.g. the parties' full sets when they train on --max-per-party samples");
  sub.add_option("--eval-n", r.eval_n, "generated samples per evaluation")
      ->capture_default_str()
      ->check(positive());
  auto* nan_party = sub.add_option("--debug-nan-party", r.debug.nan_party,
                                   "(testing) make this party's update NaN")
                        ->capture_default_str();
  auto* nan_round = sub.add_option("--debug-nan-round", r.debug.nan_round,
                                   "(testing) ... in this round")
                        ->capture_default_str();
  sub.add_option("--debug-stop-round", r.debug.stop_round,
                 "(testing) act as if SIGUSR1 arrived in this round")
      ->capture_default_str()
      ->group("");
  nan_party->group("");
  nan_round->group("");
}

}  // namespace

// Options: parties of different widths (HeteroFL; docs/reference.md, "Parties of different sizes").
void add_width_options(CLI::App& sub, TrainOptions& options) {
  TrainOptions& o = options;
  sub.add_option("--width-ratios", o.width_ratios,
                 "width ratio r in (0, 1] of each party, assigned in turn (party k gets entry k "
                 "mod the list's length; one entry per party gives each its own): the party "
                 "trains the leading r of every hidden layer's channels of G and D (HeteroFL); "
                 "default: the dataset's /parties/<k>@width_ratio, else all 1 (plain FedAvg)")
      ->check(parsed_by([](const std::string& s) { federated::parse_width_ratios(s, "--width-ratios"); },
                        "--width-ratios", "R,R,..."));
  add_choice(sub, o.width_bn, federated::width_bns(), "BatchNorm statistics with --width-ratios");
  add_choice(sub, o.width_slicing, federated::width_slicings(),
             "which channels a sub-model takes with --width-ratios");
  add_choice(sub, o.width_average, federated::width_averages(),
             "over whom each value is averaged with --width-ratios");
  sub.add_option("--width-scaler", o.width_scaler,
                 "with --width-ratios: HeteroFL's 1/r scaler on the inputs of G's output layer "
                 "and D's head in a sub-model (off: it did not sample better on the demo)")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}));
}

void add_train_options(CLI::App& sub, TrainOptions& options) {
  // The groups in the order --help and a run's config.toml list them.
  add_run_options(sub, options);
  add_local_options(sub, options);
  add_strategy_options(sub, options);
  add_aggregation_options(sub, options);
  add_pacing_options(sub, options);
  add_width_options(sub, options);
  add_model_options(sub, options);
  add_device_options(sub, options);
  add_output_options(sub, options);
}

// AdAM's kernel modulation (Zhao et al. 2022; transfer/modulation.hpp): G's kernels stay the
// --init source's, low-rank modulations of the important filters train.
void add_modulation_options(CLI::App& sub, TrainOptions& options) {
  run::RunConfig& r = options.run;
  sub.add_option("--modulation-rank", r.model.g_mod_rank,
                 "AdAM kernel modulation of G (needs --init): each kernel W becomes W * (1 + A "
                 "B^T) with A, B of this rank; G's base stays the source's and only the "
                 "modulations (and D) train and travel; 0: off")
      ->capture_default_str()
      ->check(CLI::Range(0, models::kMaxModulationRank));
  sub.add_option("--modulation-keep", r.modulation.keep,
                 "with --modulation-rank: the fraction of each layer's filters, ranked by the "
                 "probe's importance, whose modulation trains")
      ->capture_default_str()
      ->check(in_range(0, 1, End::Open));
  sub.add_option("--modulation-probe-steps", r.modulation.probe_steps,
                 "with --modulation-rank: local steps of each party's importance probe before "
                 "round 1 (its Fisher per filter, combined over parties); 0: no probe, every "
                 "filter trains")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  sub.add_option("--modulation-mask", r.modulation.mask_file,
                 "with --modulation-rank: reuse the filter mask an earlier run wrote to "
                 "OUT/modulation_mask.h5 instead of probing");
}

void add_transfer_options(CLI::App& sub, TrainOptions& options) {
  TrainOptions& o = options;
  run::RunConfig& r = options.run;
  sub.add_option("--init", r.init.path,
                 "warm start: pretrained checkpoint (.h5) or PyTorch state dict (.pt, plain "
                 "dict with generator./discriminator. keys); rank 0 reads it, all ranks get it");
  sub.add_flag("--init-strict", r.init.strict,
               "any missing, unexpected or mismatched tensor in --init is an error");
  sub.add_option("--init-map", o.init_map,
                 "rename key prefixes of a .pt file, e.g. gen.=generator.,disc.=discriminator.")
      ->check(parsed_by([](const std::string& s) { transfer::parse_prefix_map(s); },
                        "--init-map", "FROM=TO,..."));
  sub.add_option("--freeze-g", r.federated.freeze_g.freeze_blocks,
                 "freeze the first N generator blocks")
      ->capture_default_str()
      ->check(non_negative());
  sub.add_option("--freeze-d", r.federated.freeze_d.freeze_blocks,
                 "freeze the first N discriminator blocks (FreezeD)")
      ->capture_default_str()
      ->check(non_negative());
  sub.add_option("--train-only", o.train_only,
                 "train only parameters matching these globs, e.g. 'out.*' (G and D names)")
      ->delimiter(',');
  sub.add_option("--lr-mult-g", o.lr_mult_g, "per-block lr multipliers of G: blocks.0=0.1,out=2")
      ->check(lr_mult_list("--lr-mult-g"));
  sub.add_option("--lr-mult-d", o.lr_mult_d, "per-block lr multipliers of D")
      ->check(lr_mult_list("--lr-mult-d"));
  sub.add_option("--kd-weight", r.local.kd_weight,
                 "distillation from the --init generator: weight of mean (G(z) - T(z))^2")
      ->capture_default_str()
      ->check(non_negative_float());
  sub.add_option("--kd-decay", r.local.kd_decay, "per-round decay of --kd-weight")
      ->capture_default_str()
      ->check(in_range(0, 1, End::Open));
  sub.add_option("--ewc-weight", r.ewc.weight,
                 "EWC (Li et al. 2020): lambda of lambda * sum F (theta - theta_init)^2 on G, F "
                 "the --init generator's Fisher information normalised to mean 1")
      ->capture_default_str()
      ->check(non_negative_float());
  sub.add_option("--ewc-samples", r.ewc.samples,
                 "latents of EWC's Fisher estimate (computed once, on rank 0)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  sub.add_option("--cdc-weight", r.cdc_weight,
                 "cross-domain correspondence (Ojha et al. 2021): lambda of the KL between the "
                 "--init and the trained generator's pairwise feature similarities")
      ->capture_default_str()
      ->check(non_negative_float());
  add_modulation_options(sub, options);
}

void add_train_command(CLI::App& root, Commands& commands) {
  auto options = std::make_shared<TrainOptions>();
  auto* sub = root.add_subcommand("train", "federated GAN training across the MPI ranks");
  add_train_options(*sub, *options);
  add_transfer_options(*sub, *options);
  add_dp_options(*sub, *options);
  add_federation_options(*sub, *options);
  commands.push_back({sub, [options, sub](comm::Communicator& comm) {
                        // The effective config, reusable as `fedgan --config FILE train`.
                        return run_training(comm, *options, run_config_text("train", *sub));
                      }});
}

}  // namespace fedgan::cli

namespace fedgan::cli {

void add_pretrain_command(CLI::App& root, Commands& commands) {
  auto options = std::make_shared<TrainOptions>();
  // Pretraining is data-parallel training over IID shards: short rounds, Adam state kept.
  options->run.out = "runs/pretrain";
  options->run.local.local_steps = 10;
  options->optimizer_state = federated::optimizer_states().name(federated::OptimizerState::Keep);
  options->run.federated.rounds = 30;
  auto* sub = root.add_subcommand(
      "pretrain", "train a GAN on a source dataset with all ranks (data-parallel over IID "
                  "shards) and write a checkpoint to warm-start `train --init`");
  add_train_options(*sub, *options);
  commands.push_back({sub, [options, sub](comm::Communicator& comm) {
                        return run_training(comm, *options, run_config_text("pretrain", *sub));
                      }});
}

}  // namespace fedgan::cli
