// Warm start: load a pretrained model into this run's G and D by parameter name and shape,
// from a fedgan checkpoint (.h5) or a PyTorch state dict (.pt, saved as a plain dict), with a
// report of what was transferred, missing, unexpected or of another shape.
#pragma once

#include "fedgan/models/flat_parameters.hpp"

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace fedgan::transfer {

struct NamedModels {
  std::map<std::string, torch::Tensor> generator, discriminator;
  std::string source;  // file it came from
};

// Reads a .h5 fedgan checkpoint or a PyTorch .pt file. PyTorch keys are split by the prefixes
// "generator." and "discriminator." after applying `prefix_map` (pairs from=to, e.g.
// {"gen.", "generator."}). Errors name the file and say what was expected.
NamedModels read_pretrained(const std::string& path,
                            const std::vector<std::pair<std::string, std::string>>& prefix_map);

struct LoadReport {
  std::vector<std::string> loaded, missing, unexpected, shape_mismatch;
  // Kernel-modulation tensors (models/modulation.hpp) the file lacks: they keep their initial
  // values (A = 0) by design, so they are neither missing nor counted in total_numel.
  std::vector<std::string> modulation;
  std::int64_t loaded_numel = 0, total_numel = 0;
  bool clean() const { return missing.empty() && unexpected.empty() && shape_mismatch.empty(); }
  std::string text(const std::string& what) const;  // a human-readable table
};

// Copies every tensor whose name and shape match; reports the rest.
LoadReport load_partial(models::FlatParameters& flat,
                        const std::map<std::string, torch::Tensor>& tensors);

// Parses "from=to,from2=to2" (the --init-map option).
std::vector<std::pair<std::string, std::string>> parse_prefix_map(const std::string& text);

}  // namespace fedgan::transfer
