// An image dataset in memory, in the schema of docs/DESIGN.md (uint8 [N,C,H,W] images, int64
// labels), and the operations prepare applies to it before partitioning.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fedgan::data {

struct Dataset {
  torch::Tensor images;  // uint8 [N, C, H, W]
  torch::Tensor labels;  // int64 [N], class ids in [0, num_classes)
  std::string name;
  std::int64_t num_classes = 1;
  std::string source;               // where the samples came from (file or directory)
  std::string conversion = "none";  // how the source images became uint8
  std::string classes = "all";      // the class ids kept ("0,1,2"), or all

  std::int64_t size() const { return images.size(0); }
  std::vector<std::int64_t> labels_vector() const;
};

// Keeps the samples whose label is in `classes` (labels keep their original ids, num_classes
// is unchanged). Empty `classes` keeps everything. fedgan::Error for an id outside
// [0, num_classes), a repeated id, or a class with no samples.
Dataset select_classes(const Dataset& data, const std::vector<std::int64_t>& classes);

// Dataset::classes for kept ids: "all" when `classes` is empty, else "0,1,2".
std::string classes_text(const std::vector<std::int64_t>& classes);

// Throws fedgan::Error naming `what` unless images are uint8 [N,C,H,W] and labels int64 [N]
// with ids in [0, num_classes).
void check_dataset(const Dataset& data, const std::string& what);

}  // namespace fedgan::data
