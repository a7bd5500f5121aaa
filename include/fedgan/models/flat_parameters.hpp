// FlatParameters: re-seats a module's parameters (and optionally float buffers) as views into
// one contiguous tensor, so that one collective moves a whole model with no pack/unpack copy.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fedgan::models {

struct FlatEntry {
  std::string name;  // as named by the module: "conv1.weight", "bn1.running_mean"
  std::int64_t offset = 0;
  std::int64_t numel = 0;
  std::vector<std::int64_t> shape;
  bool is_buffer = false;
};

class FlatParameters {
 public:
  struct Options {
    bool include_buffers = true;  // floating-point buffers such as BatchNorm running stats
  };

  FlatParameters() = default;
  // Re-seats every parameter of `module` (recursively, in named_parameters() order, then
  // floating buffers) onto one new float32 tensor on the module's device. Values are kept.
  // After this call the module must not be moved with .to(); optimizers may be made before or
  // after (parameters keep their identity; only their storage changes).
  explicit FlatParameters(torch::nn::Module& module) : FlatParameters(module, Options{}) {}
  FlatParameters(torch::nn::Module& module, Options options);

  // The contiguous buffer that every registered tensor aliases.
  torch::Tensor& flat() { return m_flat; }
  const torch::Tensor& flat() const { return m_flat; }
  std::int64_t numel() const { return m_flat.defined() ? m_flat.numel() : 0; }
  const std::vector<FlatEntry>& entries() const { return m_entries; }
  // Number of elements that are parameters (they come first; buffers follow).
  std::int64_t parameter_numel() const { return m_parameter_numel; }

  // The parameters' part / the buffers' part of the flat tensor (views).
  torch::Tensor parameters_view() const { return m_flat.narrow(0, 0, m_parameter_numel); }
  torch::Tensor buffers_view() const {
    return m_flat.narrow(0, m_parameter_numel, numel() - m_parameter_numel);
  }

  // A detached copy of all values, and its inverse (shapes must match).
  torch::Tensor snapshot() const { return m_flat.detach().clone(); }
  void restore(const torch::Tensor& values);

  // True when every registered tensor of `module` still aliases this buffer.
  bool aliases(torch::nn::Module& module) const;

 private:
  torch::Tensor m_flat;
  std::vector<FlatEntry> m_entries;
  std::int64_t m_parameter_numel = 0;
};

}  // namespace fedgan::models
