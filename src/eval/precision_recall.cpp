// Improved precision and recall (see include/fedgan/eval/precision_recall.hpp).
#include "fedgan/eval/precision_recall.hpp"

#include <numeric>
#include <vector>

#include "fedgan/core/error.hpp"
#include "fedgan/eval/chunked.hpp"

namespace fedgan::eval {
namespace {

constexpr std::int64_t kPrBlock = 1024;

// Euclidean distances of rows a [p, d] to rows b [q, d], float64, without cdist's matmul
// shortcut's cancellation: ||a||^2 + ||b||^2 - 2 a.b in double, clamped at 0.
torch::Tensor distances(const torch::Tensor& a, const torch::Tensor& b) {
  const auto aa = a.pow(2).sum(1, true);
  const auto bb = b.pow(2).sum(1).unsqueeze(0);
  return (aa + bb - 2 * a.mm(b.t())).clamp_min(0).sqrt();
}

}  // namespace

torch::Tensor knn_radii(const torch::Tensor& features, int k, int workers) {
  const auto f = features.to(torch::kFloat64);
  const auto n = f.size(0);
  require(k >= 1 && n > k, "precision/recall: k-nearest-neighbour radii need more than k = " +
                               std::to_string(k) + " samples, got " + std::to_string(n));
  std::vector<torch::Tensor> radii(static_cast<std::size_t>(chunk_count(n, kPrBlock)));
  for_each_single_threaded(static_cast<std::int64_t>(radii.size()), workers, [&](std::int64_t b) {
    const auto begin = b * kPrBlock;
    const auto len = std::min(kPrBlock, n - begin);
    // The k+1 smallest distances include the point itself (distance 0).
    const auto nearest = std::get<0>(distances(f.narrow(0, begin, len), f).topk(k + 1, 1, false));
    radii[static_cast<std::size_t>(b)] = nearest.select(1, k);
  });
  return torch::cat(radii);
}

double manifold_coverage(const torch::Tensor& queries, const torch::Tensor& manifold,
                         const torch::Tensor& radii, int workers) {
  const auto q = queries.to(torch::kFloat64), m = manifold.to(torch::kFloat64);
  const auto r = radii.to(torch::kFloat64).unsqueeze(0);
  std::vector<std::int64_t> inside(static_cast<std::size_t>(chunk_count(q.size(0), kPrBlock)), 0);
  for_each_single_threaded(static_cast<std::int64_t>(inside.size()), workers, [&](std::int64_t b) {
    const auto begin = b * kPrBlock;
    const auto len = std::min(kPrBlock, q.size(0) - begin);
    inside[static_cast<std::size_t>(b)] =
        distances(q.narrow(0, begin, len), m).le(r).any(1).sum().item<std::int64_t>();
  });
  const auto total = std::accumulate(inside.begin(), inside.end(), std::int64_t{0});
  return static_cast<double>(total) / static_cast<double>(std::max<std::int64_t>(1, q.size(0)));
}

PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& generated, int k,
                                 int workers) {
  require(real.dim() == 2 && generated.dim() == 2 && real.size(1) == generated.size(1),
          "precision/recall: expected features [m, d] and [n, d], got " + c10::str(real.sizes()) +
              " and " + c10::str(generated.sizes()));
  PrecisionRecall pr;
  pr.precision = manifold_coverage(generated, real, knn_radii(real, k, workers), workers);
  pr.recall = manifold_coverage(real, generated, knn_radii(generated, k, workers), workers);
  return pr;
}

}  // namespace fedgan::eval
