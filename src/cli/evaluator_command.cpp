// `fedgan evaluator`: trains the feature network for FID/KID/precision-recall as a classifier on
// a labelled dataset file, reports its test accuracy and saves it (rank 0 works, all agree).
#include <memory>
#include <string>

#include "fedgan/cli/command.hpp"
#include "fedgan/cli/validators.hpp"
#include "fedgan/comm/collective.hpp"
#include "fedgan/core/malloc_tuning.hpp"
#include "fedgan/eval/evaluator_training.hpp"

namespace fedgan::cli {

void add_evaluator_command(CLI::App& root, Commands& commands) {
  auto c = std::make_shared<eval::EvaluatorTrainConfig>();
  auto* sub = root.add_subcommand(
      "evaluator", "train the feature network that `fedgan eval` uses (a CNN classifier)");
  sub->add_option("--data", c->data,
                  "labelled dataset file to train on (all rows; grey or RGB, 28 to 128 pixels: "
                  "the evaluator then reads images of exactly that shape)")
      ->required();
  sub->add_option("--test", c->test,
                  "labelled dataset file of the test split (`fedgan prepare --split test`): "
                  "its accuracy is reported and stored");
  sub->add_option("--out", c->out, "the evaluator file to write (.h5)")->required();
  sub->add_option("--epochs", c->epochs, "")->capture_default_str()->check(positive());
  sub->add_option("--batch-size", c->batch_size, "")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 20));
  sub->add_option("--lr", c->lr, "Adam learning rate")
      ->capture_default_str()
      ->check(positive_float());
  sub->add_option("--width", c->width,
                  "channels of the first convolution (and of the stem above 32 pixels)")
      ->capture_default_str()
      ->check(positive());
  sub->add_option("--features", c->feature_dim, "feature dimension (the penultimate layer)")
      ->capture_default_str()
      ->check(positive());
  sub->add_option_function<std::string>(
         "--augment",
         [c](const std::string& text) { c->augment = eval::ClassifierAugment::parse(text); },
         "augmentation of the training images, drawn from --seed: none, or a comma-separated "
         "list of " +
             choice_help("", eval::classifier_augment_words()))
      ->default_str(c->augment.to_string())
      ->check(parsed_by([](const std::string& s) { eval::ClassifierAugment::parse(s); },
                        "--augment", "LIST"));
  sub->add_option("--seed", c->seed, "seed of weights, dropout and batch order")
      ->capture_default_str();
  sub->add_option("--min-accuracy", c->min_accuracy,
                  "refuse to write an evaluator below this test accuracy (0..1)")
      ->capture_default_str()
      ->check(in_range(0, 1));
  sub->add_flag("--force", c->force, "overwrite --out");
  commands.push_back({sub, [c](comm::Communicator& comm) {
                        comm::run_on_root(comm, [&] {
                          // Freed activations stay in the heap: epochs twice as fast (see
                          // core/malloc_tuning.hpp); the arithmetic is unchanged.
                          keep_freed_memory();
                          eval::run_evaluator_training(*c);
                        });
                        return 0;
                      }});
}

}  // namespace fedgan::cli
