// LibTorch version differences kept in one file (see include/fedgan/core/torch_compat.hpp).
#include "fedgan/core/torch_compat.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

namespace fedgan::compat {

std::string torch_version() { return TORCH_VERSION; }

torch::Generator make_cpu_generator(std::uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

void set_threads(int threads) {
  if (threads > 0) torch::set_num_threads(threads);
}

}  // namespace fedgan::compat
