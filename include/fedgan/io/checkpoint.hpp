// Checkpoint files (HDF5, see docs/DESIGN.md): /generator/<name> and /discriminator/<name> float32
// tensors named as the modules name them, /state/... for optimizer and server state, and
// attributes format, round, architecture, config. Readable from h5py.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "fedgan/models/flat_parameters.hpp"
#include "fedgan/models/model_config.hpp"

namespace fedgan::io {

inline constexpr const char* kCheckpointFormat = "fedgan-checkpoint-1";

struct CheckpointData {
  std::int64_t round = 0;
  std::string architecture;  // ModelConfig::to_string()
  // The architecture, parsed (read_checkpoint fills it). A TorchScript model's archives
  // (model.scripts) are written to /scripts/generator and /scripts/discriminator (uint8) and read
  // back, checked against the architecture's id.
  models::ModelConfig model;
  std::string config_text;   // the run's effective config (TOML)
  // Width-heterogeneous runs (federated::WidthConfig::to_string(): every party's ratio, the BN
  // mode, the scaler; attribute `widths`); empty otherwise. Resume must match it; sample and
  // eval --width-ratio read the BN mode and the scaler from it.
  std::string widths;
  std::map<std::string, torch::Tensor> generator, discriminator;  // name -> tensor
  std::map<std::string, torch::Tensor> state;  // "server/g/velocity", "party/3/g_m", ...
};

// Written atomically (temp file + rename): readers never see a partial checkpoint.
void write_checkpoint(const std::string& path, const CheckpointData& data);
// Throws fedgan::Error naming the file when it is missing, not HDF5, truncated or not ours,
// when its architecture attribute does not parse or is out of range, when a stored tensor's
// shape differs from what the architecture needs (checked before anything is built), or when a
// tensor holds NaN/inf (naming the tensor; /state/privacy/rdp may hold +inf, not NaN or < 0).
CheckpointData read_checkpoint(const std::string& path);

// Only the model a checkpoint holds: its architecture and, for a TorchScript model, its archives
// (read_checkpoint's checks of those two; no tensor is read).
models::ModelConfig read_checkpoint_model(const std::string& path);

// fedgan::Error naming `file`, `what` and the first tensor holding NaN or inf.
void require_finite(const std::map<std::string, torch::Tensor>& tensors, const std::string& what,
                    const std::string& file);

// Name -> tensor views of a flat model (values shared with the model).
std::map<std::string, torch::Tensor> named_tensors(const models::FlatParameters& flat);
// Copies every entry of `flat` from `tensors` by name; every name must exist with the same shape.
void load_strict(models::FlatParameters& flat, const std::map<std::string, torch::Tensor>& tensors,
                 const std::string& what, const std::string& file);

}  // namespace fedgan::io
