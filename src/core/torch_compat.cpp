// LibTorch version differences kept in one file (see include/fedgan/core/torch_compat.hpp).
#include "fedgan/core/torch_compat.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/utils.h>
#include <torch/version.h>

namespace fedgan::compat {

std::string torch_version() { return TORCH_VERSION; }

torch::Generator make_cpu_generator(std::uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

torch::Generator make_generator(std::uint64_t seed, const torch::Device& device) {
  if (device.is_cpu()) return make_cpu_generator(seed);
  auto gen = at::globalContext().defaultGenerator(device).clone();
  gen.set_current_seed(seed);
  return gen;
}

void set_threads(int threads) {
  if (threads > 0) torch::set_num_threads(threads);
}

bool cuda_available() { return torch::cuda::is_available(); }
int cuda_device_count() {
  return cuda_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
}

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

void set_deterministic(bool on) {
  at::globalContext().setDeterministicAlgorithms(on, /*warn_only=*/false);
}

// 2.4 replaced the CUDA-only autocast calls by ones that take the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
AutocastGuard::AutocastGuard(bool enabled, torch::ScalarType dtype) : m_enabled(enabled) {
  if (!m_enabled) return;
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
}
AutocastGuard::~AutocastGuard() {
  if (!m_enabled) return;
  at::autocast::set_autocast_enabled(at::kCUDA, false);
  at::autocast::clear_cache();
}
#else
AutocastGuard::AutocastGuard(bool enabled, torch::ScalarType dtype) : m_enabled(enabled) {
  if (!m_enabled) return;
  at::autocast::set_autocast_gpu_dtype(dtype);
  at::autocast::set_enabled(true);
}
AutocastGuard::~AutocastGuard() {
  if (!m_enabled) return;
  at::autocast::set_enabled(false);
  at::autocast::clear_cache();
}
#endif

}  // namespace fedgan::compat
