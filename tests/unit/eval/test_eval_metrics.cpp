// FID, KID and precision/recall maths against closed forms and brute force: sufficient
// statistics equal torch's moments, FID matches the Gaussian W2 formula for diagonal,
// commuting and (2x2) non-commuting covariances, KID matches a double loop, and precision/recall
// match a hand-worked example; the blocked computations give the same result on any number of
// workers.
#include <catch2/catch.hpp>
#include <cmath>

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/eval/feature_stats.hpp"
#include "fedgan/eval/kid.hpp"
#include "fedgan/eval/precision_recall.hpp"

using namespace fedgan;
using namespace fedgan::eval;
using Catch::Matchers::Contains;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

torch::Tensor random_orthogonal(std::int64_t d, std::uint64_t seed) {
  auto gen = compat::make_cpu_generator(seed);
  return std::get<0>(torch::linalg_qr(torch::randn({d, d}, gen, kF64)));
}

double sum_sqrt_diff2(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.sqrt() - b.sqrt()).pow(2).sum().item<double>();
}

}  // namespace

TEST_CASE("feature statistics give torch's mean and unbiased covariance; merge = whole") {
  auto gen = compat::make_cpu_generator(3);
  const auto x = torch::randn({500, 6}, gen) * 3 + 1;
  const auto s = FeatureStats::of(x);
  const auto x64 = x.to(torch::kFloat64);
  const auto centred = x64 - x64.mean(0);
  CHECK(s.count == 500);
  CHECK(torch::allclose(s.mean(), x64.mean(0), 1e-12, 1e-12));
  CHECK(torch::allclose(s.covariance(), centred.t().mm(centred) / 499, 1e-10, 1e-10));
  auto a = FeatureStats::of(x.narrow(0, 0, 123));
  a.merge(FeatureStats::of(x.narrow(0, 123, 377)));
  CHECK(a.count == 500);
  CHECK(torch::allclose(a.outer, s.outer, 1e-12, 1e-9));
  CHECK_THROWS_WITH(a.add(torch::zeros({2, 5})), Contains("expected features [n, 6]"));
}

TEST_CASE("FID equals the closed form for diagonal covariances") {
  const auto mu1 = torch::tensor({0.0, 1.0, -2.0}, kF64),
             mu2 = torch::tensor({1.0, 1.0, 0.5}, kF64);
  const auto d1 = torch::tensor({1.0, 4.0, 0.25}, kF64), d2 = torch::tensor({9.0, 1.0, 0.25}, kF64);
  const double expected = (mu1 - mu2).pow(2).sum().item<double>() + sum_sqrt_diff2(d1, d2);
  CHECK(frechet_distance(mu1, torch::diag(d1), mu2, torch::diag(d2)) ==
        Approx(expected).epsilon(1e-12));
  CHECK(expected == Approx(1 + 6.25 + 4 + 1));  // by hand: 7.25 + (1-3)^2 + (2-1)^2
}

TEST_CASE("FID equals the closed form for commuting (co-diagonalisable) covariances") {
  const auto q = random_orthogonal(16, 11);
  auto gen = compat::make_cpu_generator(12);
  const auto e1 = torch::rand({16}, gen, kF64) * 5 + 0.01;
  const auto e2 = torch::rand({16}, gen, kF64) * 5 + 0.01;
  const auto s1 = q.mm(torch::diag(e1)).mm(q.t()), s2 = q.mm(torch::diag(e2)).mm(q.t());
  const auto mu1 = torch::randn({16}, gen, kF64), mu2 = torch::randn({16}, gen, kF64);
  const double expected = (mu1 - mu2).pow(2).sum().item<double>() + sum_sqrt_diff2(e1, e2);
  CHECK(frechet_distance(mu1, s1, mu2, s2) == Approx(expected).epsilon(1e-9));
  CHECK(frechet_distance(mu1, s1, mu1, s1) == Approx(0).margin(1e-9));
}

TEST_CASE("FID equals the closed form for non-commuting 2x2 covariances") {
  // For 2x2 PSD A, B: Tr (AB)^(1/2) = sqrt(Tr(AB) + 2 sqrt(det A det B)).
  const auto a = torch::tensor({{2.0, 0.8}, {0.8, 1.0}}, kF64);
  const auto b = torch::tensor({{0.5, -0.3}, {-0.3, 3.0}}, kF64);
  REQUIRE_FALSE(torch::allclose(a.mm(b), b.mm(a)));
  const double tr_sqrt = std::sqrt(a.mm(b).trace().item<double>() +
                                   2 * std::sqrt(a.det().item<double>() * b.det().item<double>()));
  CHECK(trace_sqrt_product(a, b) == Approx(tr_sqrt).epsilon(1e-12));
  const auto z = torch::zeros({2}, kF64);
  const double expected = (a.trace() + b.trace()).item<double>() - 2 * tr_sqrt;
  CHECK(frechet_distance(z, a, z, b) == Approx(expected).epsilon(1e-12));
  CHECK(frechet_distance(z, a, z, b) == Approx(frechet_distance(z, b, z, a)).epsilon(1e-12));
}

TEST_CASE("FID of samples approaches the Gaussians' distance; too few samples is an error") {
  auto gen = compat::make_cpu_generator(5);
  const auto x = torch::randn({40000, 4}, gen, kF64);
  const auto y =
      torch::randn({40000, 4}, gen, kF64) * 2 + torch::tensor({1.0, 0.0, 0.0, 0.0}, kF64);
  // ||mu||^2 + sum (1 - 2)^2 = 1 + 4.
  CHECK(frechet_distance(FeatureStats::of(x), FeatureStats::of(y)) == Approx(5).epsilon(0.03));
  CHECK(frechet_distance(FeatureStats::of(x), FeatureStats::of(x)) == Approx(0).margin(1e-9));
  CHECK_THROWS_WITH(frechet_distance(FeatureStats::of(x.narrow(0, 0, 4)), FeatureStats::of(y)),
                    Contains("FID is undefined for generated samples: 4 samples do not exceed "
                             "the feature dimension 4"));
}

TEST_CASE("KID is the unbiased MMD^2 of the cubic kernel (brute force) and separates sets") {
  auto gen = compat::make_cpu_generator(8);
  const auto x = torch::randn({7, 3}, gen, kF64), y = torch::randn({5, 3}, gen, kF64) + 0.5;
  const auto k = [](const torch::Tensor& a, const torch::Tensor& b) {
    return std::pow(a.dot(b).item<double>() / 3 + 1, 3);
  };
  double xx = 0, yy = 0, xy = 0;
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 7; ++j)
      if (i != j) xx += k(x[i], x[j]);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j)
      if (i != j) yy += k(y[i], y[j]);
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 5; ++j) xy += k(x[i], y[j]);
  const double expected = xx / 42 + yy / 20 - 2 * xy / 35;
  CHECK(kernel_inception_distance(x, y) == Approx(expected).epsilon(1e-12));

  const auto a = torch::randn({1500, 8}, gen), b = torch::randn({1500, 8}, gen);
  CHECK(std::abs(kernel_inception_distance(a, b)) < 0.02);
  CHECK(kernel_inception_distance(a, b + 1) > 0.5);
  CHECK_THROWS_WITH(kernel_inception_distance(a.narrow(0, 0, 1), b), Contains("at least 2"));
}

TEST_CASE("precision and recall follow the k-NN manifolds of Kynkaanniemi et al.") {
  // Real 0..4 on a line: with k = 1 each ball has radius 1. Generated {0.5, 10}: 0.5 lies in
  // the real manifold, 10 does not -> precision 1/2. The generated radii are both 9.5, so every
  // real point lies within 9.5 of 0.5 -> recall 1.
  const auto real = torch::tensor({0.0, 1.0, 2.0, 3.0, 4.0}, kF64).unsqueeze(1);
  const auto gen = torch::tensor({0.5, 10.0}, kF64).unsqueeze(1);
  const auto pr = precision_recall(real, gen, 1);
  CHECK(pr.precision == Approx(0.5));
  CHECK(pr.recall == Approx(1.0));
  CHECK(torch::allclose(knn_radii(real, 1), torch::ones({5}, kF64)));
  CHECK(torch::allclose(knn_radii(real, 3), torch::tensor({3.0, 2.0, 2.0, 2.0, 3.0}, kF64)));
  // Far apart clusters: nothing covered either way; identical sets: everything.
  auto g = compat::make_cpu_generator(2);
  const auto a = torch::randn({300, 5}, g);
  const auto far = precision_recall(a, a + 100, 3);
  CHECK(far.precision == 0.0);
  CHECK(far.recall == 0.0);
  const auto same = precision_recall(a, a.clone(), 3);
  CHECK(same.precision == 1.0);
  CHECK(same.recall == 1.0);
  CHECK_THROWS_WITH(precision_recall(a.narrow(0, 0, 3), a, 3), Contains("more than k = 3"));
}

TEST_CASE("KID and precision/recall do not depend on the worker or thread count") {
  // More rows than one block (1024), so several blocks run on several workers.
  auto gen = compat::make_cpu_generator(5);
  const auto x = torch::randn({2300, 8}, gen), y = torch::randn({1100, 8}, gen) + 0.3;
  const auto kid = kernel_inception_distance(x, y, 1);
  const auto pr = precision_recall(y, x, 3, 1);
  const int previous = at::get_num_threads();
  at::set_num_threads(3);
  const auto kid3 = kernel_inception_distance(x, y, 3);
  const auto pr3 = precision_recall(y, x, 3, 3);
  at::set_num_threads(previous);
  CHECK(kid3 == kid);
  CHECK(pr3.precision == pr.precision);
  CHECK(pr3.recall == pr.recall);
  CHECK(kid > 0.01);  // the shift is seen, so the figures are not trivially equal
  CHECK(pr.precision > 0.3);
  CHECK(pr.precision < 1.0);
}
