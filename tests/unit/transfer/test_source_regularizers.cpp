// Fine-tuning held to the source: EWC's Fisher information (closed form, finite differences),
// its penalty's gradient, λ = 0; cross-domain correspondence's loss (by hand) and the
// generator's hidden activations.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/transfer/cdc.hpp"
#include "fedgan/transfer/ewc.hpp"

using namespace fedgan;

namespace {
models::ModelConfig source_model() {
  models::ModelConfig c;
  c.latent_dim = 8;
  c.g_width = 8;
  c.d_width = 4;
  return c;
}
}  // namespace

TEST_CASE("diagonal Fisher equals its closed form for a quadratic loss", "[transfer][ewc]") {
  // loss_i = ½ (w·x_i)², so g_i = (w·x_i) x_i and F = mean_i (w·x_i)² x_i².
  auto w = torch::tensor({0.5f, -1.0f, 2.0f}).requires_grad_(true);
  w.mutable_grad() = torch::zeros({3});
  const auto x = torch::tensor({{1.0f, 2.0f, 0.0f}, {0.0f, -1.0f, 3.0f}, {2.0f, 0.5f, -1.0f}});
  auto grad = w.mutable_grad();
  const auto fisher = transfer::diagonal_fisher(
      [&](int i) { return 0.5 * (w * x[i]).sum().square(); }, grad, 3);
  std::vector<double> expected(3, 0.0);
  for (int i = 0; i < 3; ++i) {
    double dot = 0;
    for (int j = 0; j < 3; ++j) dot += w[j].item<double>() * x[i][j].item<double>();
    for (int j = 0; j < 3; ++j) expected[j] += dot * dot * std::pow(x[i][j].item<double>(), 2) / 3;
  }
  for (int j = 0; j < 3; ++j) CHECK(fisher[j].item<double>() == Approx(expected[j]).epsilon(1e-6));
  CHECK(grad.abs().sum().item<double>() == 0);  // left zeroed
}

TEST_CASE("the generator's Fisher matches finite differences of G's loss", "[transfer][ewc]") {
  torch::manual_seed(3);
  models::Gan gan(source_model());
  const std::uint64_t seed = 11;
  // One latent: F = g², g the gradient of softplus(-D(G(z))) in eval mode.
  const auto fisher = transfer::generator_fisher(gan, 1, seed);
  REQUIRE(fisher.numel() == gan.g_flat().parameter_numel());
  // Finite differences in float64 on a float64 copy of the models (the same values).
  auto gen = compat::make_cpu_generator(seed);
  const auto z = torch::randn({1, 8}, gen).to(torch::kFloat64);
  const auto entries = gan.g_flat().entries();
  gan.generator().to(torch::kFloat64);
  gan.discriminator().to(torch::kFloat64);
  gan.train(false);
  auto g_params = gan.generator().named_parameters(true);
  const auto loss = [&] {
    torch::NoGradGuard no_grad;
    return torch::softplus(-gan.discriminator().forward(gan.generator().forward(z, {}), {}))
        .sum()
        .item<double>();
  };
  // The five coordinates of largest F: |central difference| = sqrt(F) within 0.1%.
  const auto top = std::get<1>(fisher.topk(5));
  for (int k = 0; k < 5; ++k) {
    const auto j = top[k].item<std::int64_t>();
    torch::Tensor p;
    std::string name;
    std::int64_t at = 0;
    for (const auto& e : entries)
      if (!e.is_buffer && j >= e.offset && j < e.offset + e.numel) {
        p = g_params[e.name].view({-1});
        name = e.name;
        at = j - e.offset;
      }
    REQUIRE(p.defined());
    // h small: G's ReLUs and D's leaky ReLUs have kinks that a step of 1e-5 already crosses.
    const double v = p[at].item<double>(), h = 1e-7;
    torch::NoGradGuard no_grad;
    p[at].fill_(v + h);
    const double up = loss();
    p[at].fill_(v - h);
    const double down = loss();
    p[at].fill_(v);
    const double fd = (up - down) / (2 * h);
    CHECK(std::abs(fd) == Approx(std::sqrt(fisher[j].item<double>())).epsilon(1e-3));
  }
  torch::manual_seed(3);
  models::Gan fresh(source_model());
  // The estimate is a function of the seed (rank 0 computes it once; a resume recomputes it).
  const auto f4 = transfer::generator_fisher(fresh, 4, seed);
  CHECK(torch::equal(f4, transfer::generator_fisher(fresh, 4, seed)));
  CHECK(!torch::equal(f4, transfer::generator_fisher(fresh, 4, seed + 1)));
}

TEST_CASE("EWC's gradient is the penalty's, and λ = 0 changes nothing", "[transfer][ewc]") {
  const auto fisher = torch::tensor({1.0f, 3.0f, 0.0f, 4.0f});  // mean 2
  const auto source = torch::tensor({0.1f, -0.2f, 0.3f, 0.0f});
  const auto params = torch::tensor({0.3f, -0.1f, 1.0f, -0.5f});
  transfer::EwcRegularizer ewc(fisher, source, 2.0);
  auto grad = torch::tensor({1.0f, 1.0f, 1.0f, 1.0f});
  ewc.before_step(train::Net::Generator, params, grad);
  // d/dθ of 2·Σ (F/2)(θ−s)² = 2·F·(θ−s).
  const auto expected = 1.0 + 2.0 * fisher * (params - source);
  CHECK(torch::allclose(grad, expected.to(torch::kFloat32)));
  CHECK(ewc.penalty(params) ==
        Approx((fisher * (params - source).square()).sum().item<double>()));
  CHECK(ewc.penalty(source) == 0);
  auto d_grad = torch::ones({4});
  ewc.before_step(train::Net::Discriminator, params, d_grad);  // D is not held
  CHECK(torch::equal(d_grad, torch::ones({4})));
  transfer::EwcRegularizer off(fisher, source, 0.0);
  auto g0 = torch::tensor({0.25f, -7.0f, 1e-30f, 3.0f});
  const auto before = g0.clone();
  off.before_step(train::Net::Generator, params, g0);
  CHECK(torch::equal(g0, before));
  CHECK_THROWS_AS(transfer::EwcRegularizer(torch::zeros({4}), source, 1.0), Error);
  CHECK_THROWS_AS(transfer::EwcRegularizer(fisher, source, -1.0), Error);
  CHECK_THROWS_AS(transfer::EwcRegularizer(torch::ones({3}), source, 1.0), Error);
}

TEST_CASE("cross-domain correspondence's loss equals a hand computation", "[transfer][cdc]") {
  const auto s = torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}, {1.0f, 1.0f}});
  const auto t = torch::tensor({{1.0f, 0.0f}, {1.0f, 0.1f}, {0.0f, 2.0f}});
  CHECK(transfer::cdc_loss({t}, {t}).item<double>() == 0);
  // By hand: for anchor i, p_i(j) = exp cos(i,j) / Σ_k≠i exp cos(i,k) over j ≠ i;
  // KL(p_t,i ‖ p_s,i), mean over i.
  const auto cosine = [](const torch::Tensor& m, int i, int j) {
    double dot = 0, ni = 0, nj = 0;
    for (int c = 0; c < 2; ++c) {
      const double a = m[i][c].item<double>(), b = m[j][c].item<double>();
      dot += a * b;
      ni += a * a;
      nj += b * b;
    }
    return dot / std::sqrt(ni * nj);
  };
  double kl = 0;
  for (int i = 0; i < 3; ++i) {
    std::vector<int> others;
    for (int j = 0; j < 3; ++j)
      if (j != i) others.push_back(j);
    double zs = 0, zt = 0;
    for (int j : others) {
      zs += std::exp(cosine(s, i, j));
      zt += std::exp(cosine(t, i, j));
    }
    for (int j : others) {
      const double pt = std::exp(cosine(t, i, j)) / zt, ps = std::exp(cosine(s, i, j)) / zs;
      kl += pt * std::log(pt / ps) / 3;
    }
  }
  CHECK(transfer::cdc_loss({s}, {t}).item<double>() == Approx(kl).epsilon(1e-5));
  // Layers add; a 4-D activation is flattened per image.
  CHECK(transfer::cdc_loss({s, s.view({3, 2, 1, 1})}, {t, t.view({3, 2, 1, 1})}).item<double>() ==
        Approx(2 * kl).epsilon(1e-5));
  CHECK_THROWS_AS(transfer::cdc_loss({s}, {t, t}), Error);
  CHECK_THROWS_AS(transfer::cdc_loss({s.narrow(0, 0, 2)}, {t}), Error);
}

TEST_CASE("the generator's hidden activations, and CDC against the source itself",
          "[transfer][cdc]") {
  torch::manual_seed(4);
  models::Gan gan(source_model());
  const auto z = torch::randn({5, 8});
  std::vector<torch::Tensor> features;
  gan.train(false);
  const auto with = gan.generator().forward_features(z, {}, features);
  CHECK(torch::equal(with, gan.generator().forward(z, {})));
  CHECK(features.size() == gan.generator().block_prefixes().size() - 1);  // every block but "out"
  for (const auto& f : features) CHECK(f.size(0) == 5);
  // The source as its own student: no loss; a moved student: a loss whose gradient reaches G.
  torch::manual_seed(4);
  auto source = std::make_shared<models::Gan>(source_model());
  source->train(false);
  transfer::CdcRegularizer cdc(source->generator_ptr(), 10.0);
  CHECK(cdc.wants_g_features());
  CHECK(cdc.g_loss_term(z, {}, with, features).item<double>() == Approx(0).margin(1e-6));
  {
    torch::NoGradGuard no_grad;
    gan.g_flat().parameters_view().add_(torch::randn({gan.g_flat().parameter_numel()}) * 0.05);
  }
  features.clear();
  gan.g_grad().zero_();
  const auto moved = gan.generator().forward_features(z, {}, features);
  const auto term = cdc.g_loss_term(z, {}, moved, features);
  CHECK(term.item<double>() > 0);
  term.backward();
  CHECK(gan.g_grad().abs().sum().item<double>() > 0);
  CHECK_THROWS_AS(transfer::CdcRegularizer(source->generator_ptr(), 0.0), Error);
}
