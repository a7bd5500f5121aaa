// `fedgan eval`: FID (all parties pooled and the per-party mean), KID and precision/recall of a
// checkpoint's generator (or of a samples file, or of uniform noise as a baseline) against a
// dataset file, with the sample count and evaluator beside every figure. All ranks help.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>

#include "fedgan/cli/command.hpp"
#include "fedgan/cli/validators.hpp"
#include "fedgan/comm/collective.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/data/dataset_file.hpp"
#include "fedgan/eval/evaluate.hpp"
#include "fedgan/cli/width_ratio.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/io/hdf5.hpp"
#include "fedgan/models/gan.hpp"

namespace fedgan::cli {
namespace {

struct EvalCommandConfig {
  std::string checkpoint, samples, data, evaluator, cache;
  bool noise = false, json = false, no_cache = false, round0 = false;
  double width_ratio = 1;  // < 1: the sub-model at this width (HeteroFL)
  eval::EvalOptions options;
  eval::RealStatsOptions real;
};

// Checks of the options against each other, before any work (every rank reaches the same
// verdict, so the errors are collective): precision/recall need more than k samples in both
// sets, which otherwise fails deep inside the metric on every rank.
void check_sizes(const EvalCommandConfig& c) {
  const auto& o = c.options;
  if (o.knn >= o.n)
    throw Error("--knn " + std::to_string(o.knn) +
                    ": precision/recall need more than k samples, "
                    "but --n " +
                    std::to_string(o.n) + " generates " + std::to_string(o.n) + "; use --knn " +
                    std::to_string(o.n - 1) + " or less, or a larger --n",
                true);
  if (o.knn >= c.real.max_features)
    throw Error("--knn " + std::to_string(o.knn) +
                    ": precision/recall need more than k real "
                    "samples, but --real-subset " +
                    std::to_string(c.real.max_features) + " keeps " +
                    std::to_string(c.real.max_features) + "; use --real-subset " +
                    std::to_string(o.knn + 1) + " or more",
                true);
}

int run_eval(comm::Communicator& comm, const EvalCommandConfig& c) {
  const int sources = !c.checkpoint.empty() + !c.samples.empty() + c.noise;
  if (sources != 1)
    throw Error("eval: give exactly one of --checkpoint, --samples and --noise", true);
  check_sizes(c);
  auto ev = comm::collective_try(
      comm, [&] { return std::optional<eval::Evaluator>(eval::Evaluator::load(c.evaluator)); });
  if (c.options.n <= ev->feature_dim())
    throw Error("--n " + std::to_string(c.options.n) +
                    ": FID is undefined with no more samples "
                    "than the evaluator's " +
                    std::to_string(ev->feature_dim()) +
                    " features (the "
                    "covariance is singular); use --n " +
                    std::to_string(ev->feature_dim() + 1) +
                    " or more (2000+ for comparable figures)",
                true);
  // Generator or image source, checked against the evaluator before any real data is embedded.
  std::unique_ptr<models::Gan> gan;
  eval::ImageSource source;
  std::string name;
  comm::collective_try(comm, [&] {
    if (!c.checkpoint.empty()) {
      auto ck = io::read_checkpoint(c.checkpoint);
      const auto& model = ck.model;
      ev->check_image_shape(model.channels, model.image_size, model.image_size,
                            c.checkpoint + " (generator " + ck.architecture + ")");
      torch::manual_seed(c.options.seed);
      gan = std::make_unique<models::Gan>(model);
      if (c.round0) {
        name = c.checkpoint + " (its architecture, freshly initialised: round 0)";
      } else {
        io::load_strict(gan->g_flat(), ck.generator, "generator", c.checkpoint);
        name = c.checkpoint + " (round " + std::to_string(ck.round) + ")";
      }
      if (c.width_ratio != 1) {
        gan = width_submodel(*gan, ck, c.width_ratio, c.checkpoint);
        name += " at width ratio " + fmt::format("{:g}", c.width_ratio);
      }
    } else if (!c.samples.empty()) {
      source = eval::dataset_source(c.samples, c.options.n, c.options.seed);
      name = c.samples;
    } else {
      source = eval::uniform_noise_source(ev->config(), c.options.seed);
      name = "uniform noise";
    }
  });
  // FID-avg reads the parties of --data: they must be disjoint and in range, as for training.
  comm::run_on_root(comm, [&] {
    if (h5::File(c.data, h5::File::Mode::Read).exists("/parties")) data::check_partition(c.data);
  });
  auto real_options = c.real;
  real_options.use_cache = !c.no_cache;
  real_options.cache_path = c.cache;
  const auto real = eval::load_or_compute_real_stats(comm, c.data, *ev, real_options);
  const auto real_subset = std::min<std::int64_t>(c.options.n, real.features.size(0));
  if (c.options.knn >= real_subset)
    throw Error("--knn " + std::to_string(c.options.knn) +
                    ": precision/recall need more than k "
                    "real samples, but " +
                    c.data + " gives " + std::to_string(real_subset) + "; use --knn " +
                    std::to_string(std::max<std::int64_t>(1, real_subset - 1)) + " or less",
                true);
  const auto result = gan ? eval::evaluate_generator(comm, gan->generator(), gan->config(), *ev,
                                                     real, c.options, name)
                          : eval::evaluate_images(comm, source, name, *ev, real, c.options);
  if (comm.is_root()) {
    if (c.json) {
      std::cout << eval::to_json(result) << std::endl;
    } else {
      std::cout << eval::format_table(result) << std::flush;
    }
  }
  return 0;
}

}  // namespace

void add_eval_command(CLI::App& root, Commands& commands) {
  auto c = std::make_shared<EvalCommandConfig>();
  auto* sub = root.add_subcommand(
      "eval", "FID-all, FID-avg, KID and precision/recall of a checkpoint against a dataset");
  sub->add_option("--checkpoint", c->checkpoint, "checkpoint whose generator is evaluated");
  sub->add_option("--samples", c->samples,
                  "or: a dataset-schema file of images (e.g. the test split, `fedgan sample`)");
  sub->add_flag("--noise", c->noise, "or: uniform noise images (a baseline)");
  add_width_ratio_option(*sub, c->width_ratio);
  sub->add_flag("--round0", c->round0,
                "with --checkpoint: a freshly initialised generator of its architecture (the "
                "untrained baseline)");
  sub->add_option("--data", c->data, "real dataset file (its parties give FID-avg)")->required();
  sub->add_option("--evaluator", c->evaluator, "evaluator file from `fedgan evaluator`")
      ->required();
  sub->add_option("--n", c->options.n, "generated samples (above the feature dimension)")
      ->capture_default_str()
      ->check(positive());
  sub->add_option("--seed", c->options.seed, "seed of the latent vectors / sample subset")
      ->capture_default_str();
  sub->add_option("--knn", c->options.knn, "k of the precision/recall manifolds")
      ->capture_default_str()
      ->check(positive());
  sub->add_option("--real-subset", c->real.max_features,
                  "real samples kept for KID and precision/recall (they use min(n, this))")
      ->capture_default_str()
      ->check(positive());
  sub->add_option("--cache", c->cache,
                  "real-statistics cache file (default: beside --data, keyed by the evaluator)");
  sub->add_flag("--no-cache", c->no_cache, "recompute the real statistics and write no cache");
  sub->add_flag("--json", c->json, "print one JSON object instead of the table");
  commands.push_back({sub, [c](comm::Communicator& comm) { return run_eval(comm, *c); }});
}

}  // namespace fedgan::cli
