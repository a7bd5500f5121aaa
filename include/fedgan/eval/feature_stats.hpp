// Sufficient statistics of feature vectors (count, sum f, sum f f^T in float64) and the
// Frechet distance between the Gaussians they define (FID, Heusel et al. 2017). Evaluation
// computes them per chunk and merges the chunks' statistics in chunk order (see chunked.hpp),
// so FID needs O(d^2) memory per chunk and its rounding does not depend on the rank count.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fedgan::eval {

struct FeatureStats {
  std::int64_t count = 0;
  torch::Tensor sum;    // float64 [d]: sum of f
  torch::Tensor outer;  // float64 [d, d]: sum of f f^T

  static FeatureStats zeros(std::int64_t dim);
  // Statistics of the rows of `features` [n, d].
  static FeatureStats of(const torch::Tensor& features);
  std::int64_t dim() const { return sum.size(0); }

  void add(const torch::Tensor& features);  // rows [n, d], any float type
  // Adds another set's statistics; merging the same sets in another order may round otherwise.
  void merge(const FeatureStats& other);
  // sum and outer as raw float64 bytes, and back (given count and dimension): how one chunk's
  // statistics travel between ranks.
  void append_to(std::vector<std::uint8_t>& out) const;
  static FeatureStats read_from(const std::vector<std::uint8_t>& data, std::size_t& offset,
                                std::int64_t count, std::int64_t dim);

  torch::Tensor mean() const;        // float64 [d]
  torch::Tensor covariance() const;  // float64 [d, d], unbiased (divides by count - 1)
};

// Trace of the square root of (a b) for symmetric positive semi-definite a, b (float64):
// (a b)^(1/2) is similar to the symmetric M = a^(1/2) b a^(1/2), so its trace is the sum of
// the square roots of M's eigenvalues (negative round-off clamped to 0). Two symmetric
// eigendecompositions in double precision; no Newton-Schulz iteration to diverge.
double trace_sqrt_product(const torch::Tensor& a, const torch::Tensor& b);

// ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)): the squared 2-Wasserstein distance of two
// Gaussians (Dowson & Landau 1982), i.e. FID when the moments are those of evaluator features.
double frechet_distance(const torch::Tensor& mu1, const torch::Tensor& sigma1,
                        const torch::Tensor& mu2, const torch::Tensor& sigma2);

// FID of two sets of statistics. fedgan::Error (naming `what_a`/`what_b`) when a set has no
// more samples than features: its covariance would be singular and FID undefined.
double frechet_distance(const FeatureStats& a, const FeatureStats& b,
                        const std::string& what_a = "generated",
                        const std::string& what_b = "real");

}  // namespace fedgan::eval
