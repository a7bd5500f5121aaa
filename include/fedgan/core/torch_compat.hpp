// The one place for LibTorch calls whose spelling differs between 1.13 (Debian) and 2.x (GPU).
#pragma once

#include <torch/torch.h>

#include <string>

namespace fedgan::compat {

// Version of the LibTorch we were compiled against, e.g. "1.13.1".
std::string torch_version();

// A CPU generator seeded deterministically; same numbers in 1.13 and 2.x.
torch::Generator make_cpu_generator(std::uint64_t seed);

// Sets intra-op threads; safe to call more than once.
void set_threads(int threads);

}  // namespace fedgan::compat
