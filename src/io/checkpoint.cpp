// Checkpoint files (see include/fedgan/io/checkpoint.hpp).
#include "fedgan/io/checkpoint.hpp"

#include "fedgan/core/error.hpp"
#include "fedgan/io/atomic_file.hpp"
#include "fedgan/io/hdf5.hpp"

namespace fedgan::io {
namespace {

void read_group(const h5::File& file, const std::string& group, const std::string& prefix,
                std::map<std::string, torch::Tensor>& out) {
  for (const auto& child : file.children(group)) {
    const std::string path = group + "/" + child;
    if (file.is_group(path)) {
      read_group(file, path, prefix + child + "/", out);
    } else {
      out[prefix + child] = file.read(path);
    }
  }
}

}  // namespace

void write_checkpoint(const std::string& path, const CheckpointData& data) {
  write_atomically(path, [&](const std::string& temp) {
    h5::File file(temp, h5::File::Mode::Create);
    file.set_attr("/", "format", std::string(kCheckpointFormat));
    file.set_attr("/", "round", data.round);
    file.set_attr("/", "architecture", data.architecture);
    file.set_attr("/", "config", data.config_text);
    file.create_group("/generator");
    file.create_group("/discriminator");
    for (const auto& [name, t] : data.generator) file.write("/generator/" + name, t);
    for (const auto& [name, t] : data.discriminator) file.write("/discriminator/" + name, t);
    for (const auto& [name, t] : data.state) file.write("/state/" + name, t);
    file.close();
  });
}

CheckpointData read_checkpoint(const std::string& path) {
  h5::File file(path, h5::File::Mode::Read);
  const auto format = file.attr_string("/", "format");
  if (!format || *format != kCheckpointFormat)
    throw Error(path + ": not a fedgan checkpoint (attribute 'format' is " +
                (format ? "'" + *format + "'" : "missing") + ", expected '" + kCheckpointFormat +
                "')");
  CheckpointData data;
  data.round = file.attr_int("/", "round").value_or(0);
  data.architecture = file.attr_string("/", "architecture").value_or("");
  data.config_text = file.attr_string("/", "config").value_or("");
  for (const char* key : {"generator", "discriminator"}) {
    if (!file.is_group(std::string("/") + key))
      throw Error(path + ": checkpoint has no /" + key + " group");
  }
  read_group(file, "/generator", "", data.generator);
  read_group(file, "/discriminator", "", data.discriminator);
  if (file.is_group("/state")) read_group(file, "/state", "", data.state);
  return data;
}

std::map<std::string, torch::Tensor> named_tensors(const FlatParameters& flat) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& e : flat.entries())
    out[e.name] = flat.flat().narrow(0, e.offset, e.numel).view(e.shape);
  return out;
}

void load_strict(FlatParameters& flat, const std::map<std::string, torch::Tensor>& tensors,
                 const std::string& what, const std::string& file) {
  torch::NoGradGuard no_grad;
  for (const auto& e : flat.entries()) {
    auto it = tensors.find(e.name);
    if (it == tensors.end()) throw Error(file + ": " + what + " tensor '" + e.name + "' is missing");
    if (it->second.sizes().vec() != e.shape)
      throw Error(file + ": " + what + " tensor '" + e.name + "' has shape " +
                  c10::str(it->second.sizes()) + ", the model expects " + c10::str(e.shape));
    flat.flat().narrow(0, e.offset, e.numel).copy_(it->second.reshape({e.numel}));
  }
}

}  // namespace fedgan::io
