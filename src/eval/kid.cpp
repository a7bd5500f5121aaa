// Kernel Inception Distance (see include/fedgan/eval/kid.hpp).
#include "fedgan/eval/kid.hpp"

#include <vector>

#include "fedgan/core/error.hpp"
#include "fedgan/eval/chunked.hpp"

namespace fedgan::eval {
namespace {

constexpr std::int64_t kBlock = 1024;

// Sum of k(x_i, y_j) over all i, j, computed in row blocks of x; `skip_diagonal` (x == y) drops
// the terms i == j.
double kernel_sum(const torch::Tensor& x, const torch::Tensor& y, bool skip_diagonal, int workers) {
  const auto blocks = chunk_count(x.size(0), kBlock);
  std::vector<double> partial(static_cast<std::size_t>(blocks), 0.0);
  for_each_single_threaded(blocks, workers, [&](std::int64_t block) {
    const auto begin = block * kBlock;
    const auto len = std::min(kBlock, x.size(0) - begin);
    const auto k = polynomial_kernel(x.narrow(0, begin, len), y);
    double sum = k.sum().item<double>();
    if (skip_diagonal) sum -= k.diagonal(begin).sum().item<double>();
    partial[static_cast<std::size_t>(block)] = sum;
  });
  double total = 0;
  for (const double p : partial) total += p;
  return total;
}

}  // namespace

torch::Tensor polynomial_kernel(const torch::Tensor& x, const torch::Tensor& y) {
  const auto d = static_cast<double>(x.size(1));
  return (x.to(torch::kFloat64).mm(y.to(torch::kFloat64).t()) / d + 1).pow(3);
}

double kernel_inception_distance(const torch::Tensor& x, const torch::Tensor& y, int workers) {
  require(x.dim() == 2 && y.dim() == 2 && x.size(1) == y.size(1),
          "KID: expected features [m, d] and [n, d], got " + c10::str(x.sizes()) + " and " +
              c10::str(y.sizes()));
  const double m = static_cast<double>(x.size(0)), n = static_cast<double>(y.size(0));
  require(m >= 2 && n >= 2, "KID needs at least 2 samples in each set, got " +
                                std::to_string(x.size(0)) + " and " + std::to_string(y.size(0)));
  return kernel_sum(x, x, true, workers) / (m * (m - 1)) +
         kernel_sum(y, y, true, workers) / (n * (n - 1)) -
         2 * kernel_sum(x, y, false, workers) / (m * n);
}

}  // namespace fedgan::eval
