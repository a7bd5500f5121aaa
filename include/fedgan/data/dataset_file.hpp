// The dataset file (docs/DESIGN.md): HDF5 with /images uint8 [N,C,H,W], /labels int64 [N], root
// attributes name and num_classes, and /parties/<k>/{indices,class_counts} with the partition
// recipe as attributes of /parties. Reading a user's file validates and converts it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fedgan/data/dataset.hpp"
#include "fedgan/data/partitioner.hpp"
#include "fedgan/io/hdf5.hpp"

namespace fedgan::data {

// Reads a user's HDF5 images (uint8, or float32/float64 in [0,1] or [-1,1], converted to uint8
// and the conversion recorded in Dataset::conversion) of shape [N,C,H,W] or [N,H,W] (one
// channel), with optional integer labels [N]. Without labels every sample is class 0.
// fedgan::Error naming the file and the dataset for anything else.
Dataset read_hdf5_dataset(const std::string& path, const std::string& images_key = "images",
                          const std::string& labels_key = "labels");

// Writes the dataset, the parties, their class histograms and the `table` text, atomically
// (temporary file + rename): a failure leaves `path` as it was.
void write_dataset_file(const std::string& path, const Dataset& data, const PartyIndices& parties,
                        const PartitionRecipe& recipe, const std::string& table,
                        bool compress = false);

// The partition part of a dataset file: /parties with the recipe and `table` as attributes,
// /parties/<k>/indices and /parties/<k>/class_counts (every writer's, so the schema is one).
void write_parties(h5::File& file, const PartyIndices& parties,
                   const std::vector<std::int64_t>& labels, std::int64_t num_classes,
                   const PartitionRecipe& recipe, const std::string& table);

// What a reader needs to know about a dataset file without loading the images.
struct DatasetFileInfo {
  std::string name;
  std::int64_t size = 0;  // rows of /images
  std::int64_t num_classes = 1;
  std::vector<std::int64_t> image_shape;  // {C, H, W}
  int num_parties = 0;
  bool has_labels = false;
};

// Checks the schema (fedgan::Error naming the file and object otherwise).
DatasetFileInfo read_dataset_info(const std::string& path);

// Checks the partition: every party 0..num_parties-1 has a non-empty int64 vector of row
// indices within [0, N), and no row belongs to a party twice or to two parties (parties never
// share data). fedgan::Error naming the file, the party and the row otherwise. Reads only the
// index vectors (8 bytes per row), not the images.
void check_partition(const std::string& path);

// Party `party`'s indices from an open dataset file, checked as check_partition checks them
// (within [0, rows), each row once), with errors naming the party and the value.
std::vector<std::int64_t> read_party_indices(const std::string& path, int party, std::int64_t rows);

// The images of a float tensor in [0,1] or [-1,1] as uint8, with a description of the mapping.
// fedgan::Error (naming `what`) for NaN or values outside both ranges.
torch::Tensor float_images_to_uint8(const torch::Tensor& images, const std::string& what,
                                    std::string* conversion);

}  // namespace fedgan::data
