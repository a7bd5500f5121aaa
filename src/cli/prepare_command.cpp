// `fedgan prepare`: binds the options to data::PrepareConfig; rank 0 does the work and every
// rank agrees on the outcome (a bad input fails the whole job with rank 0's message).
#include <memory>
#include <vector>

#include "fedgan/cli/command.hpp"
#include "fedgan/cli/validators.hpp"
#include "fedgan/comm/collective.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/data/idx_reader.hpp"
#include "fedgan/data/prepare.hpp"

namespace fedgan::cli {

namespace {

// The options as given; the named choices (--dataset, --split, --partition) are parsed on rank
// 0 when the command runs, so an unknown name fails the job there as any bad input does
// ("--partition: unknown method 'x' (expected ...)", every rank agreeing).
struct PrepareOptions {
  data::PrepareConfig config;
  std::string dataset = data::to_string(config.dataset);
  std::string split = data::to_string(config.split);
  std::string partition = data::to_string(config.partition.method);
  // Options that belong to one source or partition: refused elsewhere instead of ignored.
  std::vector<const CLI::Option*> folder_only;
  const CLI::Option* parties = nullptr;

  data::PrepareConfig parsed() const {
    auto c = config;
    c.dataset = data::dataset_sources().parse(dataset).value;
    // Only Fashion-MNIST has splits (hdf5 ignores --split, as it always did).
    if (c.dataset == data::DatasetSource::FashionMnist) c.split = data::parse_split(split);
    c.partition.method = data::parse_partition_method(partition);
    for (const auto* o : folder_only)
      require(o->count() == 0 || c.dataset == data::DatasetSource::Folder,
              o->get_name() + ": only with --dataset folder");
    require(parties->count() == 0 || c.partition.method != data::PartitionMethod::Folders,
            "--parties: not with --partition folders (one party per top-level folder of "
            "--source)");
    return c;
  }
};

template <class Entry>
void add_prepare_choice(CLI::App& sub, std::string& text, const ChoiceTable<Entry>& table,
                        const std::string& intro) {
  sub.add_option(table.option(), text, choice_help(intro, table))->capture_default_str();
}

}  // namespace

void add_prepare_command(CLI::App& root, Commands& commands) {
  auto options = std::make_shared<PrepareOptions>();
  auto* config = &options->config;
  auto* sub = root.add_subcommand(
      "prepare", "load a dataset, split it into parties and write one dataset file (HDF5)");
  add_prepare_choice(*sub, options->dataset, data::dataset_sources(), "where the images come from");
  add_prepare_choice(*sub, options->split, data::splits(), "fashion-mnist's split");
  sub->add_option("--source", config->source,
                  std::string("fashion-mnist: directory of the IDX files (default ") +
                      data::kFashionMnistDir +
                      "); hdf5: the input file; folder: the directory of images, "
                      "DIR/[<party>/][<class>/]*.png");
  options->folder_only = {
      sub->add_option("--image-size", config->image_size,
                      "folder: side of the square images written (centre crop, then resize)")
          ->check(CLI::IsMember({32, 64, 128}))
          ->capture_default_str(),
      sub->add_option("--channels", config->channels, "folder: 1 (grey) or 3 (RGB)")
          ->check(CLI::IsMember({1, 3}))
          ->capture_default_str(),
      sub->add_flag("--skip-bad-images", config->skip_bad_images,
                    "folder: leave out image files that cannot be decoded, with a warning "
                    "(default: stop at the first, naming it)")};
  sub->add_option("--images-key", config->images_key, "hdf5: dataset holding the images")
      ->capture_default_str();
  sub->add_option("--labels-key", config->labels_key,
                  "hdf5: dataset holding the labels (optional in the file)")
      ->capture_default_str();
  sub->add_option("--classes", config->classes,
                  "comma-separated class ids to keep (labels keep their ids; folder: ids of the "
                  "sorted class folders); default all")
      ->delimiter(',');
  auto& p = config->partition;
  options->parties =
      sub->add_option("--parties", p.parties, "number of parties (not with --partition folders)")
          ->capture_default_str();
  add_prepare_choice(*sub, options->partition, data::partition_methods(),
                     "how the parties are drawn");
  sub->add_option("--alpha", p.alpha,
                  "Dirichlet concentration (dirichlet: label skew, quantity: size skew); "
                  "smaller is more skewed")
      ->capture_default_str();
  sub->add_option("--shards-per-party", p.shards_per_party, "shards: label-sorted shards per party")
      ->capture_default_str();
  sub->add_option("--seed", p.seed, "seed of the partition")->capture_default_str();
  sub->add_option("--max-per-party", p.max_per_party,
                  "few-shot parties: each party keeps at most N of its images (a draw seeded "
                  "by --seed); the file holds only the kept images; 0: all")
      ->capture_default_str()
      ->check(non_negative());
  sub->add_option("--out", config->out, "the dataset file to write")->required();
  sub->add_flag("--force", config->force, "overwrite an existing --out");
  sub->add_flag("--compress", config->compress,
                "deflate the images (smaller file, slower party reads)");
  commands.push_back({sub, [options](comm::Communicator& comm) {
                        comm::run_on_root(comm, [&] { data::run_prepare(options->parsed()); });
                        return 0;
                      }});
}

}  // namespace fedgan::cli
