// The two tensor operations of DP-FedAvg: clipping a party's whole update to an L2 norm, and
// seeded Gaussian noise that is the same on every platform and every rank.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace fedgan::privacy {

// L2 norm of all parts together (float64, summed element by element in a fixed order, so the
// same on every thread count); with norm > clip every part is scaled in place by clip/norm.
// Returns the norm before clipping. clip = +inf leaves the parts untouched (bit for bit).
double clip_l2(std::vector<torch::Tensor>& parts, double clip);

// n standard-normal float64 values from one seed: data::Rng (mt19937_64) and the Box–Muller
// transform, both outputs of a pair used. Portable: a seed gives the same values everywhere.
torch::Tensor gaussian_noise(std::int64_t n, std::uint64_t seed);

// target += stddev · gaussian_noise(numel, seed), reshaped to target (any dtype, any device;
// the noise is drawn on the CPU in float64 and converted once).
void add_gaussian_noise(torch::Tensor& target, double stddev, std::uint64_t seed);

}  // namespace fedgan::privacy
