// Checkpoint files (see include/fedgan/io/checkpoint.hpp).
#include "fedgan/io/checkpoint.hpp"

#include "fedgan/io/checkpoint_keys.hpp"

#include <cstring>
#include <sstream>

#include "fedgan/core/error.hpp"
#include "fedgan/io/atomic_file.hpp"
#include "fedgan/io/hdf5.hpp"
#include "fedgan/models/gan.hpp"

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

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::ostringstream s;
  s << c10::IntArrayRef(shape);
  return s.str();
}

// The stored datasets of /generator or /discriminator against the shapes the architecture
// needs, from the file's metadata only (no tensor is read, no model is built).
void check_stored_shapes(const h5::File& file, const std::string& group,
                         const models::TensorShapes& expected, const std::string& architecture) {
  const std::string where = file.path() + ": /" + group + "/";
  const std::string because = " (attribute architecture = '" + architecture + "')";
  for (const auto& [name, shape] : expected) {
    if (!file.exists("/" + group + "/" + name))
      throw Error(where + name + " is missing; the architecture needs it with shape " +
                  shape_text(shape) + because);
    const auto stored = file.shape("/" + group + "/" + name);
    if (stored != shape)
      throw Error(where + name + " has shape " + shape_text(stored) +
                  ", but the architecture "
                  "needs " +
                  shape_text(shape) + because + "; the file is inconsistent");
  }
  for (const auto& child : file.children("/" + group))
    if (!expected.count(child) && !file.is_group("/" + group + "/" + child))
      throw Error(where + child + " is not part of the architecture" + because);
}

// Bytes <-> a 1-D uint8 tensor (a TorchScript archive in /scripts).
torch::Tensor bytes_tensor(const std::string& bytes) {
  auto t = torch::empty({static_cast<std::int64_t>(bytes.size())}, torch::kUInt8);
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

// A TorchScript model's archives from /scripts, checked against the architecture's id.
void read_scripts(const h5::File& file, models::ModelConfig& model) {
  models::ScriptArchives archives;
  for (const char* key : {"generator", "discriminator"}) {
    const std::string name = std::string("/scripts/") + key;
    if (!file.exists(name))
      throw Error(file.path() + ": " + name +
                  " is missing; a checkpoint of a TorchScript model holds its archives there");
    const auto t = file.read(name).contiguous();
    if (t.scalar_type() != torch::kUInt8 || t.dim() != 1)
      throw Error(file.path() + ": " + name + " must be a 1-D uint8 dataset (archive bytes)");
    std::string bytes(static_cast<std::size_t>(t.numel()), '\0');
    if (t.numel() > 0) std::memcpy(bytes.data(), t.data_ptr(), bytes.size());
    (std::string(key) == "generator" ? archives.generator : archives.discriminator) =
        std::move(bytes);
  }
  const std::string id = archives.id();
  if (id != model.script_id)
    throw Error(file.path() + ": the archives in /scripts have id " + id +
                ", but attribute architecture names id=" + model.script_id +
                "; the file is inconsistent");
  model.set_scripts(std::move(archives));
}

// The architecture attribute (also returned as text), parsed, with a TorchScript model's
// archives; errors name the file and the attribute.
models::ModelConfig read_model(const h5::File& file, std::string& architecture) {
  const auto text = file.attr_string("/", "architecture");
  if (!text)
    throw Error(file.path() + ": attribute 'architecture' is missing (expected e.g. '" +
                models::ModelConfig().to_string() + "')");
  architecture = *text;
  try {
    auto model = models::ModelConfig::parse(architecture);
    if (model.is_torchscript()) read_scripts(file, model);
    return model;
  } catch (const Error& e) {
    throw Error(file.path() + ": attribute architecture = '" + architecture + "': " + e.what());
  }
}

}  // namespace

models::ModelConfig read_checkpoint_model(const std::string& path) {
  h5::File file(path, h5::File::Mode::Read);
  h5::require_format(file, kCheckpointFormat, "checkpoint");
  std::string architecture;
  return read_model(file, architecture);
}

void write_checkpoint(const std::string& path, const CheckpointData& data) {
  write_atomically(path, [&](const std::string& temp) {
    h5::File file(temp, h5::File::Mode::Create);
    file.set_attr("/", "format", std::string(kCheckpointFormat));
    file.set_attr("/", "round", data.round);
    file.set_attr("/", "architecture", data.architecture);
    file.set_attr("/", "config", data.config_text);
    if (!data.widths.empty()) file.set_attr("/", "widths", data.widths);
    file.create_group("/generator");
    file.create_group("/discriminator");
    for (const auto& [name, t] : data.generator) file.write("/generator/" + name, t);
    for (const auto& [name, t] : data.discriminator) file.write("/discriminator/" + name, t);
    for (const auto& [name, t] : data.state) file.write("/state/" + name, t);
    if (data.model.scripts) {
      file.create_group("/scripts");
      file.write("/scripts/generator", bytes_tensor(data.model.scripts->generator));
      file.write("/scripts/discriminator", bytes_tensor(data.model.scripts->discriminator));
    }
    file.close();
  });
}

CheckpointData read_checkpoint(const std::string& path) {
  h5::File file(path, h5::File::Mode::Read);
  h5::require_format(file, kCheckpointFormat, "checkpoint");
  CheckpointData data;
  data.round = file.attr_int("/", "round").value_or(0);
  if (data.round < 0)
    throw Error(path + ": attribute round = " + std::to_string(data.round) + " is negative");
  data.config_text = file.attr_string("/", "config").value_or("");
  data.widths = file.attr_string("/", "widths").value_or("");
  for (const char* key : {"generator", "discriminator"}) {
    if (!file.is_group(std::string("/") + key))
      throw Error(path + ": checkpoint has no /" + key + " group");
  }
  data.model = read_model(file, data.architecture);
  models::ModelShapes shapes;
  try {
    shapes = models::ModelRegistry::instance().shapes(data.model);
  } catch (const Error& e) {
    throw Error(path + ": attribute architecture = '" + data.architecture + "': " + e.what());
  }
  check_stored_shapes(file, "generator", shapes.generator, data.architecture);
  check_stored_shapes(file, "discriminator", shapes.discriminator, data.architecture);
  read_group(file, "/generator", "", data.generator);
  read_group(file, "/discriminator", "", data.discriminator);
  if (file.is_group("/state")) read_group(file, "/state", "", data.state);
  require_finite(data.generator, "/generator/", path);
  require_finite(data.discriminator, "/discriminator/", path);
  // The RDP account of a DP run with --dp-noise-multiplier 0 is +inf at every order (epsilon is
  // infinite, as the run reports): valid there and only there; NaN or a negative value is not.
  auto state = data.state;
  if (const auto rdp = state.find(keys::kPrivacyRdp); rdp != state.end()) {
    const auto& t = rdp->second;
    if (!t.is_floating_point() || torch::isnan(t).any().item<bool>() || (t < 0).any().item<bool>())
      throw Error(path + ": /state/" + keys::kPrivacyRdp +
                  " holds NaN or negative values; an RDP account is >= 0 at every order "
                  "(+inf after rounds without noise)");
    state.erase(rdp);
  }
  require_finite(state, "/state/", path);
  return data;
}

void require_finite(const std::map<std::string, torch::Tensor>& tensors, const std::string& what,
                    const std::string& file) {
  for (const auto& [name, t] : tensors) {
    if (!t.is_floating_point()) continue;
    const auto bad = t.numel() - torch::isfinite(t).sum().item<std::int64_t>();
    if (bad > 0)
      throw Error(file + ": " + what + name + " holds " + std::to_string(bad) + " NaN/inf of " +
                  std::to_string(t.numel()) +
                  " values; a model with non-finite values cannot "
                  "be used (was it saved after training diverged?)");
  }
}

std::map<std::string, torch::Tensor> named_tensors(const models::FlatParameters& flat) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& e : flat.entries())
    out[e.name] = flat.flat().narrow(0, e.offset, e.numel).view(e.shape);
  return out;
}

void load_strict(models::FlatParameters& flat, const std::map<std::string, torch::Tensor>& tensors,
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
