// Kernel modulation helpers (see include/fedgan/models/modulation.hpp).
#include "fedgan/models/modulation.hpp"

#include "fedgan/core/error.hpp"

namespace fedgan::models {
namespace {

bool has_modulation_suffix(const std::string& name, const std::string& word) {
  return name.size() > word.size() + 1 &&
         name.compare(name.size() - word.size() - 1, word.size() + 1, "." + word) == 0;
}

}  // namespace

torch::Tensor modulated_kernel(const torch::Tensor& weight, const torch::Tensor& a,
                               const torch::Tensor& b) {
  // [in, R] x [R, out] -> [in, out], the layout of a transposed convolution's weight.
  const auto m = torch::mm(b, a.t());
  return weight * (m + 1).unsqueeze(-1).unsqueeze(-1);
}

bool is_modulation_name(const std::string& name) {
  return has_modulation_suffix(name, kModA) || has_modulation_suffix(name, kModB);
}

std::vector<ModulatedLayer> modulated_layers(const FlatParameters& flat) {
  std::vector<ModulatedLayer> out;
  const std::string a_suffix = std::string(".") + kModA, b_suffix = std::string(".") + kModB;
  for (const auto& e : flat.entries()) {
    if (e.is_buffer || !has_modulation_suffix(e.name, kModA)) continue;
    ModulatedLayer layer;
    layer.prefix = e.name.substr(0, e.name.size() - a_suffix.size());
    require(e.shape.size() == 2, "modulation: " + e.name + " is not a matrix");
    layer.a_offset = e.offset;
    layer.filters = e.shape[0];
    layer.rank = e.shape[1];
    bool found = false;
    for (const auto& f : flat.entries()) {
      if (f.name != layer.prefix + b_suffix) continue;
      require(f.shape.size() == 2 && f.shape[1] == layer.rank,
              "modulation: " + f.name + " does not match " + e.name);
      layer.b_offset = f.offset;
      layer.inputs = f.shape[0];
      found = true;
    }
    require(found, "modulation: " + e.name + " has no " + layer.prefix + b_suffix);
    out.push_back(layer);
  }
  return out;
}

std::map<std::string, torch::Tensor> fold_modulation(std::map<std::string, torch::Tensor> named) {
  std::vector<std::string> prefixes;
  for (const auto& [name, t] : named)
    if (has_modulation_suffix(name, kModA)) prefixes.push_back(name.substr(0, name.size() - 6));
  torch::NoGradGuard no_grad;
  for (const auto& p : prefixes) {
    const auto a = named.at(p + "." + kModA), b = named.at(p + "." + kModB);
    auto& w = named.at(p + ".weight");
    w = modulated_kernel(w, a, b);
    named.erase(p + "." + kModA);
    named.erase(p + "." + kModB);
  }
  return named;
}

}  // namespace fedgan::models
