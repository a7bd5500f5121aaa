// The one place for LibTorch calls whose spelling differs between 1.13 (Debian, CPU) and 2.x
// (the CUDA builds of PyTorch 2.x), and for the device calls that a CPU build must still compile.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace fedgan::compat {

// Version of the LibTorch we were compiled against, e.g. "1.13.1".
std::string torch_version();

// A CPU generator seeded deterministically; same numbers in 1.13 and 2.x.
torch::Generator make_cpu_generator(std::uint64_t seed);
// A generator of `device` (CPU or CUDA) seeded deterministically: a fresh clone of the device's
// default generator, so parties and rounds draw from independent, reproducible streams.
torch::Generator make_generator(std::uint64_t seed, const torch::Device& device);

// Sets intra-op threads; safe to call more than once.
void set_threads(int threads);

// CUDA as LibTorch sees it (false and 0 in a CPU build).
bool cuda_available();
int cuda_device_count();
// Waits for the work queued on `device` (no-op on the CPU): timings of GPU work need it.
void synchronize(const torch::Device& device);
// Deterministic algorithms on (or off): the GPU kernels without a deterministic variant then
// raise an error instead of running (torch.use_deterministic_algorithms).
void set_deterministic(bool on);

// Autocast (mixed precision) for CUDA in this thread: ops that tolerate it run in `dtype`
// (bfloat16), the rest (losses, reductions, BatchNorm) in float32. Nesting is not supported.
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, torch::ScalarType dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool m_enabled;
};

}  // namespace fedgan::compat
