// FlatParameters implementation (see include/fedgan/models/flat_parameters.hpp).
#include "fedgan/models/flat_parameters.hpp"

#include "fedgan/core/error.hpp"

namespace fedgan::models {
namespace {

std::vector<std::pair<std::string, torch::Tensor>> flat_targets(torch::nn::Module& module,
                                                               bool buffers,
                                                               std::int64_t* n_params) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : module.named_parameters(/*recurse=*/true))
    out.emplace_back(item.key(), item.value());
  if (n_params) *n_params = static_cast<std::int64_t>(out.size());
  if (buffers) {
    for (const auto& item : module.named_buffers(/*recurse=*/true))
      if (item.value().is_floating_point()) out.emplace_back(item.key(), item.value());
  }
  return out;
}

}  // namespace

FlatParameters::FlatParameters(torch::nn::Module& module, Options options) {
  std::int64_t n_params = 0;
  auto targets = flat_targets(module, options.include_buffers, &n_params);
  require(!targets.empty(), "FlatParameters: the module has no parameters");
  std::int64_t total = 0;
  const auto device = targets.front().second.device();
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const auto& [name, t] = targets[i];
    require(t.scalar_type() == torch::kFloat32,
            "FlatParameters: " + name + " is not float32 (" + c10::toString(t.scalar_type()) + ")");
    require(t.device() == device, "FlatParameters: " + name + " is on another device");
    FlatEntry e;
    e.name = name;
    e.offset = total;
    e.numel = t.numel();
    e.shape = t.sizes().vec();
    e.is_buffer = static_cast<std::int64_t>(i) >= n_params;
    total += e.numel;
    if (!e.is_buffer) m_parameter_numel = total;
    m_entries.push_back(std::move(e));
  }
  m_flat = torch::empty({total}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    auto& t = targets[i].second;
    auto view = m_flat.narrow(0, m_entries[i].offset, m_entries[i].numel).view(t.sizes());
    view.copy_(t);
    // set_data swaps storage but keeps the tensor object, so autograd and optimizers that
    // already hold this parameter keep working, now reading and writing the flat buffer.
    t.set_data(view);
  }
}

void FlatParameters::restore(const torch::Tensor& values) {
  require(values.numel() == numel(), "FlatParameters::restore: expected " +
                                         std::to_string(numel()) + " values, got " +
                                         std::to_string(values.numel()));
  torch::NoGradGuard no_grad;
  m_flat.copy_(values.reshape({numel()}));
}

bool FlatParameters::aliases(torch::nn::Module& module) const {
  auto targets = flat_targets(module, true, nullptr);
  const auto* base = static_cast<const char*>(m_flat.data_ptr());
  std::size_t k = 0;
  for (auto& [name, t] : targets) {
    if (k >= m_entries.size()) return false;
    if (m_entries[k].name != name) continue;  // e.g. buffers left out by the options
    const auto* p = static_cast<const char*>(t.data_ptr());
    if (p != base + m_entries[k].offset * 4) return false;
    ++k;
  }
  return k == m_entries.size();
}

}  // namespace fedgan::models
