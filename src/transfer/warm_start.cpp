// Warm start from a pretrained checkpoint (see include/fedgan/transfer/warm_start.hpp).
#include "fedgan/transfer/warm_start.hpp"

#include "fedgan/core/error.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/io/hdf5.hpp"

#include <fstream>
#include <iterator>
#include <sstream>

namespace fedgan::transfer {
namespace {

std::map<std::string, torch::Tensor> read_pytorch(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": no such file or not readable");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  torch::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const std::exception& e) {
    throw Error(path + ": not a readable PyTorch file (" + std::string(e.what()).substr(0, 200) +
                "); save the state dict as a plain dict: "
                "torch.save(dict(model.state_dict()), path) — an OrderedDict does not load in "
                "LibTorch");
  }
  if (!value.isGenericDict())
    throw Error(path + ": expected a dict of name -> tensor; save it with "
                       "torch.save(dict(model.state_dict()), path) (an OrderedDict does not load)");
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor())
      throw Error(path + ": every entry must map a string name to a tensor");
    out[item.key().toStringRef()] = item.value().toTensor().to(torch::kFloat32).contiguous();
  }
  return out;
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_prefix_map(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    if (eq == std::string::npos)
      throw Error("--init-map: '" + item + "' is not of the form from=to (e.g. gen.=generator.)");
    out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  return out;
}

NamedModels read_pretrained(const std::string& path,
                            const std::vector<std::pair<std::string, std::string>>& prefix_map) {
  NamedModels models;
  models.source = path;
  if (h5::is_hdf5(path)) {
    auto ck = io::read_checkpoint(path);
    models.generator = std::move(ck.generator);
    models.discriminator = std::move(ck.discriminator);
    return models;
  }
  for (const auto& [key, t] : read_pytorch(path)) {
    std::string name = key;
    for (const auto& [from, to] : prefix_map) {
      if (starts_with(name, from)) {
        name = to + name.substr(from.size());
        break;
      }
    }
    if (starts_with(name, "generator.")) {
      models.generator[name.substr(10)] = t;
    } else if (starts_with(name, "discriminator.")) {
      models.discriminator[name.substr(14)] = t;
    } else {
      throw Error(path + ": key '" + name + "' starts with neither 'generator.' nor "
                  "'discriminator.'; map prefixes with --init-map (e.g. gen.=generator.)");
    }
  }
  return models;
}

LoadReport load_partial(FlatParameters& flat, const std::map<std::string, torch::Tensor>& tensors) {
  LoadReport r;
  torch::NoGradGuard no_grad;
  std::map<std::string, bool> used;
  for (const auto& e : flat.entries()) {
    r.total_numel += e.numel;
    auto it = tensors.find(e.name);
    if (it == tensors.end()) {
      r.missing.push_back(e.name);
      continue;
    }
    used[e.name] = true;
    if (it->second.sizes().vec() != e.shape) {
      r.shape_mismatch.push_back(e.name + " (file " + c10::str(it->second.sizes()) + ", model " +
                                 c10::str(c10::IntArrayRef(e.shape)) + ")");
      continue;
    }
    flat.flat().narrow(0, e.offset, e.numel).copy_(it->second.reshape({e.numel}));
    r.loaded.push_back(e.name);
    r.loaded_numel += e.numel;
  }
  for (const auto& [name, t] : tensors)
    if (!used.count(name)) r.unexpected.push_back(name);
  return r;
}

std::string LoadReport::text(const std::string& what) const {
  std::ostringstream s;
  s << what << ": transferred " << loaded.size() << " tensors (" << loaded_numel << " of "
    << total_numel << " values, "
    << (total_numel ? 100.0 * static_cast<double>(loaded_numel) / static_cast<double>(total_numel)
                    : 0.0)
    << "%)\n";
  for (const auto& n : missing) s << "  missing in the file (kept at its initial value): " << n << "\n";
  for (const auto& n : shape_mismatch) s << "  shape mismatch (not loaded): " << n << "\n";
  for (const auto& n : unexpected) s << "  unexpected in the file (ignored): " << n << "\n";
  return s.str();
}

}  // namespace fedgan::transfer
