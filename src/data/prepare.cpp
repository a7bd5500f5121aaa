// The prepare pipeline (see include/fedgan/data/prepare.hpp).
#include "fedgan/data/prepare.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <sstream>

#include "fedgan/core/error.hpp"
#include "fedgan/data/dataset_file.hpp"
#include "fedgan/data/idx_reader.hpp"
#include "fedgan/data/prepare_folder.hpp"

namespace fedgan::data {

const ChoiceTable<Choice<DatasetSource>>& dataset_sources() {
  static const Choice<DatasetSource> entries[] = {
      {DatasetSource::FashionMnist, "fashion-mnist", "the IDX files in --source"},
      {DatasetSource::Hdf5, "hdf5", "the HDF5 file --source"},
      {DatasetSource::Folder, "folder",
       "the image files (PNG, JPEG, BMP, GIF, TGA, PNM) in the directory --source; class "
       "folders give labels"},
  };
  static const ChoiceTable<Choice<DatasetSource>> table(entries, "--dataset", "dataset");
  return table;
}

std::string to_string(DatasetSource source) { return dataset_sources().name(source); }

Dataset load_source(const PrepareConfig& config) {
  switch (config.dataset) {
    case DatasetSource::FashionMnist:
      return load_fashion_mnist(config.source.empty() ? kFashionMnistDir : config.source,
                                config.split);
    case DatasetSource::Hdf5:
      require(!config.source.empty(), "--dataset hdf5 needs --source FILE (an HDF5 file)");
      return read_hdf5_dataset(config.source, config.images_key, config.labels_key);
    case DatasetSource::Folder:
      throw Error("--dataset folder: images are streamed to the file by prepare_image_folder");
  }
  throw Error("--dataset: no such source");
}

std::string party_table(const PartyIndices& parties, const std::vector<std::int64_t>& labels,
                        std::int64_t num_classes) {
  const auto counts = class_counts(parties, labels, num_classes);
  std::vector<std::int64_t> totals(static_cast<std::size_t>(num_classes), 0);
  std::string out = "party  samples  max-share |";
  for (std::int64_t c = 0; c < num_classes; ++c) out += fmt::format(" {:>6}", c);
  out += "\n";
  std::int64_t all = 0;
  for (std::size_t k = 0; k < parties.size(); ++k) {
    const auto n = static_cast<std::int64_t>(parties[k].size());
    const auto top = *std::max_element(counts[k].begin(), counts[k].end());
    // The largest class's share of the party: 1/num_classes when balanced, 1 for one class.
    const double share = n ? static_cast<double>(top) / static_cast<double>(n) : 0.0;
    out += fmt::format("{:>5} {:>8} {:>10.3f} |", k, n, share);
    for (std::int64_t c = 0; c < num_classes; ++c) {
      const auto v = counts[k][static_cast<std::size_t>(c)];
      totals[static_cast<std::size_t>(c)] += v;
      out += fmt::format(" {:>6}", v);
    }
    out += "\n";
    all += n;
  }
  out += fmt::format("total {:>8} {:>10} |", all, "");
  for (auto v : totals) out += fmt::format(" {:>6}", v);
  return out + "\n";
}

void log_parties(const PartitionRecipe& r, const std::string& table) {
  if (r.method == PartitionMethod::Folders)
    spdlog::info("prepare: {} parties, one per folder", r.parties);
  else
    spdlog::info("prepare: {} parties, partition {} (alpha {}, shards-per-party {}, seed {}){}",
                 r.parties, to_string(r.method), r.alpha, r.shards_per_party, r.seed,
                 r.max_per_party > 0 ? fmt::format(", at most {} per party", r.max_per_party)
                                     : std::string());
  std::istringstream lines(table);
  for (std::string line; std::getline(lines, line);) spdlog::info("  {}", line);
}

void check_output(const PrepareConfig& config) {
  require(!config.out.empty(), "--out: the output file is required");
  require(config.force || !std::filesystem::exists(config.out),
          config.out + ": exists already; pass --force to overwrite it");
}

PrepareResult run_prepare(const PrepareConfig& config) {
  if (config.dataset == DatasetSource::Folder) return prepare_image_folder(config).result;
  check_output(config);
  // Cheap checks first, so a bad flag fails before the data is read.
  validate(config.partition, std::numeric_limits<std::int64_t>::max());
  // Before the data is read too: the message is the partition table's own.
  if (config.partition.method == PartitionMethod::Folders) make_partitioner(config.partition);

  const auto start = std::chrono::steady_clock::now();
  const Dataset all = load_source(config);
  const Dataset data = select_classes(all, config.classes);
  spdlog::info("prepare: {} from {}: {} images {}x{}x{}, {} classes{}", data.name, data.source,
               all.size(), data.images.size(1), data.images.size(2), data.images.size(3),
               data.num_classes,
               config.classes.empty() ? "" : fmt::format(", {} kept", data.size()));
  if (data.conversion != "none") spdlog::info("prepare: images converted: {}", data.conversion);

  auto labels = data.labels_vector();
  PrepareResult result;
  result.parties = partition(labels, data.num_classes, config.partition);
  // Few-shot parties: each keeps at most max_per_party rows, and the file holds only the rows
  // some party keeps (indices renumbered in row order).
  Dataset kept = data;
  if (config.partition.max_per_party > 0) {
    cap_parties(result.parties, config.partition.max_per_party, config.partition.seed);
    std::vector<std::int64_t> rows;
    for (const auto& p : result.parties) rows.insert(rows.end(), p.begin(), p.end());
    std::sort(rows.begin(), rows.end());
    std::vector<std::int64_t> renumber(static_cast<std::size_t>(data.size()), -1);
    for (std::size_t i = 0; i < rows.size(); ++i)
      renumber[static_cast<std::size_t>(rows[i])] = static_cast<std::int64_t>(i);
    for (auto& p : result.parties)
      for (auto& row : p) row = renumber[static_cast<std::size_t>(row)];
    const auto index = torch::tensor(rows, torch::kInt64);
    kept.images = data.images.index_select(0, index);
    kept.labels = data.labels.index_select(0, index);
    labels = kept.labels_vector();
  }
  result.samples = kept.size();
  result.table = party_table(result.parties, labels, kept.num_classes);
  log_parties(config.partition, result.table);

  write_dataset_file(config.out, kept, result.parties, config.partition, result.table,
                     config.compress);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("prepare: wrote {} ({} samples) in {:.2f} s", config.out, result.samples, seconds);
  return result;
}

}  // namespace fedgan::data
