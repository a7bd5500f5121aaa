// Warm start from a pretrained checkpoint (see include/fedgan/transfer/warm_start.hpp).
#include "fedgan/transfer/warm_start.hpp"

#include "fedgan/core/error.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/io/hdf5.hpp"
#include "fedgan/models/modulation.hpp"

#include <fstream>
#include <iterator>
#include <sstream>

namespace fedgan::transfer {
namespace {

const char* const kExpected =
    "--init expects a fedgan checkpoint (.h5, written by `fedgan train` or `pretrain`) or a "
    "PyTorch state dict saved with torch.save(dict(model.state_dict()), path)";

// What a file holds, judged by its first bytes rather than by its name.
enum class FileKind { Missing, Hdf5, Zip, LegacyPickle, Other };

FileKind sniff(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return FileKind::Missing;
  if (h5::is_hdf5(path)) return FileKind::Hdf5;
  char head[4] = {0, 0, 0, 0};
  in.read(head, sizeof(head));
  if (in.gcount() == 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4)
    return FileKind::Zip;
  // torch.save before PyTorch 1.6 (or _use_new_zipfile_serialization=False): a bare pickle.
  if (in.gcount() >= 2 && static_cast<unsigned char>(head[0]) == 0x80)
    return FileKind::LegacyPickle;
  return FileKind::Other;
}

std::map<std::string, torch::Tensor> read_pytorch(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  torch::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const std::exception& e) {
    // The first line of LibTorch's message says what went wrong (a backtrace follows).
    std::string why = error_message(e);
    why = why.substr(0, why.find('\n')).substr(0, 200);
    throw Error(path + ": a zip archive, but not one LibTorch can read as a torch.save file (" +
                why + "); " + kExpected +
                " (an OrderedDict or a TorchScript module does not load)");
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
  switch (sniff(path)) {
    case FileKind::Missing:
      throw Error(path + ": no such file or not readable");
    case FileKind::Hdf5: {
      // Checked against its architecture and for NaN/inf by read_checkpoint.
      auto ck = io::read_checkpoint(path);
      models.generator = std::move(ck.generator);
      models.discriminator = std::move(ck.discriminator);
      return models;
    }
    case FileKind::LegacyPickle:
      throw Error(path +
                  ": a PyTorch file in the legacy (pre-1.6, non-zip) format, which "
                  "LibTorch cannot read; save it again with torch.save(dict(sd), path) "
                  "from PyTorch 1.6 or later");
    case FileKind::Other:
      throw Error(path +
                  ": neither an HDF5 file nor a PyTorch zip archive (is it truncated, or "
                  "another kind of file?); " +
                  kExpected);
    case FileKind::Zip:
      break;
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
  io::require_finite(models.generator, "generator.", path);
  io::require_finite(models.discriminator, "discriminator.", path);
  return models;
}

LoadReport load_partial(models::FlatParameters& flat,
                        const std::map<std::string, torch::Tensor>& tensors) {
  LoadReport r;
  torch::NoGradGuard no_grad;
  std::map<std::string, bool> used;
  for (const auto& e : flat.entries()) {
    auto it = tensors.find(e.name);
    // A fresh modulation (A = 0) is meant to start from its initial values: not missing.
    if (it == tensors.end() && models::is_modulation_name(e.name)) {
      r.modulation.push_back(e.name);
      continue;
    }
    r.total_numel += e.numel;
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
  if (!modulation.empty())
    s << "  kernel modulation (not in the file; starts at A = 0, the source's output): "
      << modulation.size() << " tensors\n";
  for (const auto& n : missing) s << "  missing in the file (kept at its initial value): " << n << "\n";
  for (const auto& n : shape_mismatch) s << "  shape mismatch (not loaded): " << n << "\n";
  for (const auto& n : unexpected) s << "  unexpected in the file (ignored): " << n << "\n";
  return s.str();
}

}  // namespace fedgan::transfer
