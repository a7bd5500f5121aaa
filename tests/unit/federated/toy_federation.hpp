// A toy federation for round-level tests: a tiny unconditional DCGAN and parties of random
// images, each party's images and shuffling seeded from its id (so any rank builds the same).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "fedgan/core/torch_compat.hpp"
#include "fedgan/data/party_data.hpp"
#include "fedgan/federated/round/federated_trainer.hpp"

namespace fedgan::testing {

inline models::ModelConfig toy_model() {
  models::ModelConfig c;
  c.latent_dim = 8;
  c.g_width = 4;
  c.d_width = 4;
  return c;
}

// Parties [first, last) (last < 0: every size): party k holds sizes[k] images uniform in
// [-1, 1] drawn with seed image_seed + k, and shuffles with seed shuffle_seed + k.
inline std::vector<federated::LocalParty> toy_parties(const std::vector<std::int64_t>& sizes,
                                                      std::uint64_t image_seed,
                                                      std::uint64_t shuffle_seed, int first = 0,
                                                      int last = -1) {
  if (last < 0) last = static_cast<int>(sizes.size());
  std::vector<federated::LocalParty> out;
  for (int k = first; k < last; ++k) {
    const auto u = static_cast<std::uint64_t>(k);
    out.push_back(
        {k,
         std::make_shared<data::TensorPartyData>(
             torch::rand({sizes[u], 1, 28, 28}, compat::make_cpu_generator(image_seed + u)) * 2 - 1,
             torch::Tensor(), shuffle_seed + u)});
  }
  return out;
}

}  // namespace fedgan::testing
