// Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs", sec. 4): the
// unbiased estimate of the squared maximum mean discrepancy with the cubic polynomial kernel
// k(x, y) = (x^T y / d + 1)^3. Unlike FID it is unbiased in the sample count, and can be < 0.
#pragma once

#include <torch/torch.h>

namespace fedgan::eval {

// The kernel matrix k(x_i, y_j) in float64 for rows x [m, d], y [n, d].
torch::Tensor polynomial_kernel(const torch::Tensor& x, const torch::Tensor& y);

// MMD^2_u = 1/(m(m-1)) sum_{i!=j} k(x_i,x_j) + 1/(n(n-1)) sum_{i!=j} k(y_i,y_j)
//         - 2/(mn) sum_{i,j} k(x_i,y_j). Needs m, n >= 2 (fedgan::Error otherwise). Computed in
// fixed row blocks, each on one intra-op thread (spread over `workers` threads) and summed in
// block order: memory stays O(block * max(m, n)) and the result does not depend on `workers`
// or the thread count.
double kernel_inception_distance(const torch::Tensor& x, const torch::Tensor& y, int workers = 1);

}  // namespace fedgan::eval
