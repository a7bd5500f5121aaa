// `train`'s client-level DP options (--dp-*, --epsilon-budget) and their typed form.
#include <fmt/format.h>

#include <cmath>

#include "fedgan/cli/train_options.hpp"
#include "fedgan/cli/validators.hpp"
#include "fedgan/core/error.hpp"

namespace fedgan::cli {
namespace {

// "off" or a finite number > 0 (the clip norm C).
CLI::Validator clip_or_off() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        if (input == "off") return {};
        double v = 0;
        if (!CLI::detail::lexical_cast(input, v) || !std::isfinite(v))
          return "'" + input + "' is neither off nor a finite number (the clip norm C > 0)";
        return v > 0 ? std::string()
                     : input + " is not > 0 (the clip norm C must be positive; off: no DP)";
      },
      "off | C > 0");
}

}  // namespace

void add_dp_options(CLI::App& sub, TrainOptions& o) {
  auto& d = o.run.dp;
  // Every DP option alike: its default shown in --help, its validator, the DP group.
  const auto add = [&sub](const std::string& name, auto& value, const std::string& help,
                          const CLI::Validator& check) {
    sub.add_option(name, value, help)
        ->capture_default_str()
        ->check(check)
        ->group("Client-level differential privacy (DP-FedAvg; see docs/reference.md, Privacy)");
  };
  add("--dp-clip", o.dp_clip,
      "clip each participating party's whole update (G and D) to this L2 norm C and "
      "turn DP on: Poisson sampling at rate --participation, Gaussian noise, the "
      "RDP account (off: no DP)",
      clip_or_off());
  add("--dp-noise-multiplier", d.noise_multiplier,
      "z: the sum of clipped updates gets N(0, z^2 C^2) per value (0: no noise, "
      "infinite epsilon)",
      non_negative());
  add("--dp-noise", o.dp_noise, choice_help("where the noise comes from", privacy::noise_modes()),
      one_of(privacy::noise_modes()));
  add("--dp-weighting", o.dp_weighting,
      choice_help("how clipped updates are weighted", privacy::dp_weightings()),
      one_of(privacy::dp_weightings()));
  add("--dp-delta", d.delta,
      "delta of the (epsilon, delta) guarantee, below 1/parties (0: 1/(10 parties))",
      in_range(0, 1, End::Closed, End::Open));
  add("--epsilon-budget", d.epsilon_budget,
      "stop (with a checkpoint) before the round that would take epsilon above this "
      "(0: no budget)",
      non_negative());
  add("--dp-clip-quantile", d.clip_quantile,
      "adaptive clipping (Andrew et al. 2021): move C toward this quantile of the "
      "update norms, from a noised count (0: fixed C)",
      in_range(0, 1, End::Closed, End::Open));
  add("--dp-clip-lr", d.clip_lr,
      "adaptive clipping: geometric step size of C",
      positive());
  add("--dp-clip-count-stddev", d.clip_count_stddev,
      "adaptive clipping: noise stddev of the clipped count, > z/2 (0: expected "
      "participants / 20)",
      non_negative());
}

privacy::DpConfig to_dp_config(const TrainOptions& o) {
  privacy::DpConfig d = o.run.dp;
  d.enabled = o.dp_clip != "off";
  d.noise = privacy::noise_modes().parse(o.dp_noise).value;
  d.weighting = privacy::dp_weightings().parse(o.dp_weighting).value;
  if (d.enabled) {
    d.clip = std::stod(o.dp_clip);  // checked by the validator
    return d;
  }
  // Every rank reads the same options: the refusal is collective.
  const privacy::DpConfig defaults;
  std::string given;
  if (d.noise_multiplier != defaults.noise_multiplier) given += " --dp-noise-multiplier";
  if (d.noise != defaults.noise) given += " --dp-noise";
  if (d.weighting != defaults.weighting) given += " --dp-weighting";
  if (d.delta != defaults.delta) given += " --dp-delta";
  if (d.epsilon_budget != defaults.epsilon_budget) given += " --epsilon-budget";
  if (d.clip_quantile != defaults.clip_quantile) given += " --dp-clip-quantile";
  if (d.clip_lr != defaults.clip_lr) given += " --dp-clip-lr";
  if (d.clip_count_stddev != defaults.clip_count_stddev) given += " --dp-clip-count-stddev";
  if (!given.empty())
    throw Error("DP options without --dp-clip:" + given +
                    "; give --dp-clip C to train with client-level DP",
                /*collective=*/true);
  return d;
}

}  // namespace fedgan::cli
