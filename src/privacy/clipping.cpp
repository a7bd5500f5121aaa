// Update clipping and seeded Gaussian noise (see clipping.hpp).
#include "fedgan/privacy/clipping.hpp"

#include <cmath>

#include "fedgan/core/error.hpp"
#include "fedgan/data/random.hpp"

namespace fedgan::privacy {
namespace {

// Σ x² of one tensor in float64, in index order: no dependence on LibTorch's reduction tree.
double sum_of_squares(const torch::Tensor& t) {
  const auto x = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const double* p = x.data_ptr<double>();
  double s = 0;
  for (std::int64_t i = 0, n = x.numel(); i < n; ++i) s += p[i] * p[i];
  return s;
}

}  // namespace

double clip_l2(std::vector<torch::Tensor>& parts, double clip) {
  require(clip > 0, "clip norm must be > 0");
  double squares = 0;
  for (const auto& p : parts) squares += sum_of_squares(p);
  const double norm = std::sqrt(squares);
  if (std::isfinite(clip) && norm > clip) {
    torch::NoGradGuard no_grad;
    for (auto& p : parts) {
      // In float64, then back: one rounding per element whatever the part's dtype.
      p.copy_(p.to(torch::kFloat64).mul_(clip / norm));
    }
  }
  return norm;
}

torch::Tensor gaussian_noise(std::int64_t n, std::uint64_t seed) {
  auto out = torch::empty({n}, torch::kFloat64);
  double* p = out.data_ptr<double>();
  data::Rng rng(seed);
  for (std::int64_t i = 0; i < n; i += 2) {
    // Box–Muller on (0, 1] × [0, 1): log never sees 0.
    const double r = std::sqrt(-2.0 * std::log(1.0 - rng.uniform()));
    const double a = 2.0 * M_PI * rng.uniform();
    p[i] = r * std::cos(a);
    if (i + 1 < n) p[i + 1] = r * std::sin(a);
  }
  return out;
}

void add_gaussian_noise(torch::Tensor& target, double stddev, std::uint64_t seed) {
  if (stddev == 0 || target.numel() == 0) return;
  torch::NoGradGuard no_grad;
  auto noise = gaussian_noise(target.numel(), seed).mul_(stddev).view(target.sizes());
  if (target.scalar_type() == torch::kFloat64 && target.is_cpu() && target.is_contiguous()) {
    target.add_(noise);
  } else {
    target.copy_(target.to(torch::kCPU, torch::kFloat64).add_(noise));
  }
}

}  // namespace fedgan::privacy
