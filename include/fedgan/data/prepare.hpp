// `fedgan prepare` as a library call: load a dataset (Fashion-MNIST IDX files or a user's HDF5
// file), keep a class subset, partition it into parties and write one dataset file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fedgan/core/choice.hpp"
#include "fedgan/data/dataset.hpp"
#include "fedgan/data/idx_reader.hpp"
#include "fedgan/data/partitioner.hpp"

namespace fedgan::data {

// --dataset: fashion-mnist | hdf5 (a user's file) | folder (a directory of image files).
enum class DatasetSource { FashionMnist, Hdf5, Folder };
const ChoiceTable<Choice<DatasetSource>>& dataset_sources();
std::string to_string(DatasetSource source);

struct PrepareConfig {
  DatasetSource dataset = DatasetSource::FashionMnist;
  Split split = Split::Train;         // fashion-mnist
  std::string source;                 // directory (fashion-mnist, folder) or file (hdf5)
  std::string images_key = "images";  // hdf5: dataset holding the images
  std::string labels_key = "labels";  // hdf5: dataset holding the labels (optional)
  std::vector<std::int64_t> classes;  // kept class ids; empty keeps all
  int image_size = 64;                // folder: side of the written square images
  int channels = 3;                   // folder: 1 (grey) or 3 (RGB)
  bool skip_bad_images = false;       // folder: undecodable images warned about, not fatal
  PartitionRecipe partition;
  std::string out;
  bool force = false;     // overwrite an existing --out
  bool compress = false;  // deflate the images (smaller file, slower party reads)
};

struct PrepareResult {
  std::int64_t samples = 0;
  PartyIndices parties;
  std::string table;
};

// Loads the source named by the config (fedgan::Error naming the file otherwise). Not for
// --dataset folder, which is streamed to the file (data/prepare_folder.hpp).
Dataset load_source(const PrepareConfig& config);

// The per-party table: samples, class histogram and the largest class share per party.
std::string party_table(const PartyIndices& parties, const std::vector<std::int64_t>& labels,
                        std::int64_t num_classes);

// Logs how the parties were formed (the recipe, or one per folder) and the table, line by line.
void log_parties(const PartitionRecipe& recipe, const std::string& table);

// Checks --out (required; replaced only with force); fedgan::Error otherwise.
void check_output(const PrepareConfig& config);

// Runs the whole command; logs the table line by line. Nothing is written on error, and an
// existing --out is only replaced with force.
PrepareResult run_prepare(const PrepareConfig& config);

}  // namespace fedgan::data
