// Improved precision and recall (Kynkaenniemi et al. 2019, eq. 1-2): each set's manifold is the
// union of balls around its features with radius the distance to the k-th nearest neighbour in
// the same set. Precision: the fraction of generated features inside the real manifold;
// recall: the fraction of real features inside the generated manifold.
#pragma once

#include <torch/torch.h>

namespace fedgan::eval {

struct PrecisionRecall {
  double precision = 0;
  double recall = 0;
};

// All three work in fixed row blocks, each on one intra-op thread (spread over `workers`
// threads), so their results do not depend on `workers` or the thread count.

// Distance from each row of `features` [n, d] to its k-th nearest other row ([n], float64).
torch::Tensor knn_radii(const torch::Tensor& features, int k, int workers = 1);

// Fraction of rows of `queries` within radius[j] of some row j of `manifold`.
double manifold_coverage(const torch::Tensor& queries, const torch::Tensor& manifold,
                         const torch::Tensor& radii, int workers = 1);

// fedgan::Error when either set has no more than k rows.
PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& generated,
                                 int k = 3, int workers = 1);

}  // namespace fedgan::eval
