// Dataset checks and class selection (see include/fedgan/data/dataset.hpp).
#include "fedgan/data/dataset.hpp"

#include <algorithm>
#include <set>

#include "fedgan/core/error.hpp"

namespace fedgan::data {

std::vector<std::int64_t> Dataset::labels_vector() const {
  auto l = labels.to(torch::kInt64).contiguous();
  return {l.data_ptr<std::int64_t>(), l.data_ptr<std::int64_t>() + l.numel()};
}

void check_dataset(const Dataset& data, const std::string& what) {
  require(
      data.images.defined() && data.images.dim() == 4 && data.images.scalar_type() == torch::kUInt8,
      what + ": images must be uint8 [N,C,H,W]");
  require(
      data.labels.defined() && data.labels.dim() == 1 && data.labels.scalar_type() == torch::kInt64,
      what + ": labels must be int64 [N]");
  require(data.labels.size(0) == data.images.size(0),
          what + ": " + std::to_string(data.labels.size(0)) + " labels for " +
              std::to_string(data.images.size(0)) + " images (expected one label per image)");
  require(data.num_classes >= 1, what + ": num_classes must be at least 1");
  if (data.labels.numel() > 0) {
    const auto lo = data.labels.min().item<std::int64_t>();
    const auto hi = data.labels.max().item<std::int64_t>();
    require(lo >= 0 && hi < data.num_classes,
            what + ": labels span [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "], expected ids in [0, num_classes = " + std::to_string(data.num_classes) + ")");
  }
}

Dataset select_classes(const Dataset& data, const std::vector<std::int64_t>& classes) {
  if (classes.empty()) return data;
  std::set<std::int64_t> seen;
  for (auto c : classes) {
    require(c >= 0 && c < data.num_classes,
            "--classes: unknown class id " + std::to_string(c) + " (" + data.source + " has " +
                std::to_string(data.num_classes) + " classes, ids 0.." +
                std::to_string(data.num_classes - 1) + ")");
    require(seen.insert(c).second, "--classes: class id " + std::to_string(c) + " listed twice");
  }
  auto keep = torch::zeros({data.size()}, torch::kBool);
  for (auto c : classes) {
    auto mask = data.labels.eq(c);
    require(mask.any().item<bool>(),
            "--classes: class " + std::to_string(c) + " has no samples in " + data.source);
    keep.logical_or_(mask);
  }
  const auto rows = keep.nonzero().squeeze(1);
  Dataset out = data;
  out.classes = classes_text(classes);
  out.images = data.images.index_select(0, rows);
  out.labels = data.labels.index_select(0, rows);
  return out;
}

std::string classes_text(const std::vector<std::int64_t>& classes) {
  if (classes.empty()) return "all";
  std::string out;
  for (auto c : classes) out += (out.empty() ? "" : ",") + std::to_string(c);
  return out;
}

}  // namespace fedgan::data
