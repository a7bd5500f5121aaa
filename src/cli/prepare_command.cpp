// `fedgan prepare`: binds the options to data::PrepareConfig; rank 0 does the work and every
// rank agrees on the outcome (a bad input fails the whole job with rank 0's message).
#include <memory>

#include "fedgan/cli/command.hpp"
#include "fedgan/comm/collective.hpp"
#include "fedgan/data/idx_reader.hpp"
#include "fedgan/data/prepare.hpp"

namespace fedgan::cli {

void add_prepare_command(CLI::App& root, Commands& commands) {
  auto config = std::make_shared<data::PrepareConfig>();
  auto* sub = root.add_subcommand(
      "prepare", "load a dataset, split it into parties and write one dataset file (HDF5)");
  sub->add_option("--dataset", config->dataset, "fashion-mnist | hdf5")->capture_default_str();
  sub->add_option("--split", config->split, "fashion-mnist: train | test")->capture_default_str();
  sub->add_option("--source", config->source,
                  std::string("fashion-mnist: directory of the IDX files (default ") +
                      data::kFashionMnistDir + "); hdf5: the input file");
  sub->add_option("--images-key", config->images_key, "hdf5: dataset holding the images")
      ->capture_default_str();
  sub->add_option("--labels-key", config->labels_key,
                  "hdf5: dataset holding the labels (optional in the file)")
      ->capture_default_str();
  sub->add_option("--classes", config->classes,
                  "comma-separated class ids to keep (labels keep their ids); default all")
      ->delimiter(',');
  auto& p = config->partition;
  sub->add_option("--parties", p.parties, "number of parties")->capture_default_str();
  sub->add_option("--partition", p.method, "iid | dirichlet | shards | quantity")
      ->capture_default_str();
  sub->add_option("--alpha", p.alpha,
                  "Dirichlet concentration (dirichlet: label skew, quantity: size skew); "
                  "smaller is more skewed")
      ->capture_default_str();
  sub->add_option("--shards-per-party", p.shards_per_party, "shards: label-sorted shards per party")
      ->capture_default_str();
  sub->add_option("--seed", p.seed, "seed of the partition")->capture_default_str();
  sub->add_option("--out", config->out, "the dataset file to write")->required();
  sub->add_flag("--force", config->force, "overwrite an existing --out");
  sub->add_flag("--compress", config->compress,
                "deflate the images (smaller file, slower party reads)");
  commands.push_back({sub, [config](comm::Communicator& comm) {
                        comm::run_on_root(comm, [&] { data::run_prepare(*config); });
                        return 0;
                      }});
}

}  // namespace fedgan::cli
