// Sufficient statistics and the Frechet distance (see include/fedgan/eval/feature_stats.hpp).
#include "fedgan/eval/feature_stats.hpp"

#include <torch/torch.h>

#include "fedgan/core/error.hpp"
#include "fedgan/eval/chunked.hpp"

namespace fedgan::eval {
namespace {

const auto kDouble = torch::TensorOptions().dtype(torch::kFloat64);

// Symmetric PSD square root via eigh: V diag(sqrt(max(lambda, 0))) V^T.
torch::Tensor sqrt_psd(const torch::Tensor& a) {
  const auto [values, vectors] = torch::linalg_eigh(a, "L");
  return (vectors * values.clamp_min(0).sqrt().unsqueeze(0)).mm(vectors.t());
}

}  // namespace

FeatureStats FeatureStats::zeros(std::int64_t dim) {
  return {0, torch::zeros({dim}, kDouble), torch::zeros({dim, dim}, kDouble)};
}

FeatureStats FeatureStats::of(const torch::Tensor& features) {
  require(features.dim() == 2,
          "feature statistics: expected features [n, d], got " + c10::str(features.sizes()));
  auto s = zeros(features.size(1));
  s.add(features);
  return s;
}

void FeatureStats::add(const torch::Tensor& features) {
  require(features.dim() == 2 && features.size(1) == dim(),
          "feature statistics: expected features [n, " + std::to_string(dim()) + "], got " +
              c10::str(features.sizes()));
  const auto f = features.to(sum.device(), torch::kFloat64);
  count += f.size(0);
  sum.add_(f.sum(0));
  outer.addmm_(f.t(), f);
}

void FeatureStats::merge(const FeatureStats& other) {
  require(other.dim() == dim(), "feature statistics: cannot merge dimension " +
                                    std::to_string(other.dim()) + " into " + std::to_string(dim()));
  count += other.count;
  sum.add_(other.sum);
  outer.add_(other.outer);
}

void FeatureStats::append_to(std::vector<std::uint8_t>& out) const {
  append_tensor(out, sum);
  append_tensor(out, outer);
}

FeatureStats FeatureStats::read_from(const std::vector<std::uint8_t>& data, std::size_t& offset,
                                     std::int64_t count, std::int64_t dim) {
  FeatureStats s;
  s.count = count;
  s.sum = read_tensor(data, offset, {dim}, torch::kFloat64);
  s.outer = read_tensor(data, offset, {dim, dim}, torch::kFloat64);
  return s;
}

torch::Tensor FeatureStats::mean() const {
  require(count > 0, "feature statistics: the mean of no samples is undefined");
  return sum / static_cast<double>(count);
}

torch::Tensor FeatureStats::covariance() const {
  require(count > 1, "feature statistics: a covariance needs at least 2 samples, got " +
                         std::to_string(count));
  const auto mu = mean();
  const auto n = static_cast<double>(count);
  auto cov = (outer - n * torch::outer(mu, mu)) / (n - 1);
  return (cov + cov.t()) / 2;  // exact symmetry for eigh
}

double trace_sqrt_product(const torch::Tensor& a, const torch::Tensor& b) {
  const auto a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  const auto root = sqrt_psd(a64);
  auto m = root.mm(b64).mm(root);
  m = (m + m.t()) / 2;
  return torch::linalg_eigvalsh(m, "L").clamp_min(0).sqrt().sum().item<double>();
}

double frechet_distance(const torch::Tensor& mu1, const torch::Tensor& sigma1,
                        const torch::Tensor& mu2, const torch::Tensor& sigma2) {
  require(mu1.sizes() == mu2.sizes() && sigma1.sizes() == sigma2.sizes() && sigma1.dim() == 2 &&
              sigma1.size(0) == mu1.numel() && sigma1.size(1) == mu1.numel(),
          "Frechet distance: means and covariances must have matching dimensions");
  const auto diff = (mu1 - mu2).to(torch::kFloat64);
  const double mean_term = diff.dot(diff).item<double>();
  const double trace_term =
      (sigma1.to(torch::kFloat64).trace() + sigma2.to(torch::kFloat64).trace()).item<double>() -
      2 * trace_sqrt_product(sigma1, sigma2);
  // Round-off may leave a tiny negative value for identical distributions.
  return std::max(0.0, mean_term + trace_term);
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b, const std::string& what_a,
                        const std::string& what_b) {
  require(a.dim() == b.dim(), "FID: " + what_a + " features have dimension " +
                                  std::to_string(a.dim()) + ", " + what_b + " features " +
                                  std::to_string(b.dim()));
  for (const auto* s : {&a, &b}) {
    const auto& what = s == &a ? what_a : what_b;
    require(s->count > s->dim(),
            "FID is undefined for " + what + " samples: " + std::to_string(s->count) +
                " samples do not exceed the feature dimension " + std::to_string(s->dim()) +
                " (the covariance is singular); use more than " + std::to_string(s->dim()) +
                " samples (2000 or more for figures worth comparing)");
  }
  return frechet_distance(a.mean(), a.covariance(), b.mean(), b.covariance());
}

}  // namespace fedgan::eval
