// DP-FedAvg's pieces: clipping, seeded noise, Poisson sampling, the plan's checks, adaptive clip.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "fedgan/core/error.hpp"
#include "fedgan/privacy/clipping.hpp"
#include "fedgan/federated/round/participation.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/privacy/dp_config.hpp"

using namespace fedgan::privacy;
using fedgan::federated::poisson_participants;

TEST_CASE("clip_l2 bounds the whole update and leaves small or unclipped ones alone", "[dp]") {
  torch::manual_seed(3);
  std::vector<torch::Tensor> parts{torch::randn({100}), torch::randn({7, 5}), torch::randn({3})};
  double squares = 0;
  for (auto& p : parts) squares += p.to(torch::kFloat64).pow(2).sum().item<double>();
  const auto copy = [&] {
    std::vector<torch::Tensor> c;
    for (auto& p : parts) c.push_back(p.clone());
    return c;
  };
  // A 1000x larger update ends at norm C, like any update above C.
  auto big = copy();
  for (auto& p : big) p.mul_(1000);
  const double norm = clip_l2(big, 0.5);
  CHECK(norm == Approx(1000 * std::sqrt(squares)).epsilon(1e-5));
  double after = 0;
  for (auto& p : big) after += p.to(torch::kFloat64).pow(2).sum().item<double>();
  CHECK(std::sqrt(after) == Approx(0.5).epsilon(1e-6));
  // Direction kept.
  CHECK(torch::allclose(big[1] / big[1].norm(), parts[1] / parts[1].norm(), 1e-5, 1e-6));
  // Below C, and with C = +inf: untouched, bit for bit.
  auto small = copy();
  clip_l2(small, 1e6);
  auto unclipped = copy();
  clip_l2(unclipped, std::numeric_limits<double>::infinity());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    CHECK(torch::equal(small[i], parts[i]));
    CHECK(torch::equal(unclipped[i], parts[i]));
  }
  CHECK_THROWS_AS(clip_l2(small, 0), fedgan::Error);
}

TEST_CASE("seeded Gaussian noise: portable, N(0, 1), independent streams", "[dp]") {
  const auto a = gaussian_noise(200000, 42);
  CHECK(torch::equal(a, gaussian_noise(200000, 42)));
  CHECK(!torch::equal(a.narrow(0, 0, 100), gaussian_noise(100, 43)));
  // 200000 draws: the mean's standard error is 0.0022, the variance's 0.0032; 5 sigma bounds.
  CHECK(std::abs(a.mean().item<double>()) < 0.011);
  CHECK(std::abs(a.var().item<double>() - 1) < 0.016);
  auto t = torch::zeros({4, 5}, torch::kFloat32);
  add_gaussian_noise(t, 2.0, 7);
  CHECK(torch::allclose(t.flatten().to(torch::kFloat64), gaussian_noise(20, 7) * 2, 0, 1e-6));
}

TEST_CASE("Poisson sampling: seeded, rate q, independent of the rank that asks", "[dp]") {
  const auto a = poisson_participants(1000, 0.1, 5, 3);
  CHECK(a == poisson_participants(1000, 0.1, 5, 3));
  CHECK(a != poisson_participants(1000, 0.1, 5, 4));
  CHECK(std::is_sorted(a.begin(), a.end()));
  // Over 200 rounds, 20000 expected joins; the standard deviation is 134.
  std::int64_t joins = 0;
  for (int t = 1; t <= 200; ++t) joins += poisson_participants(1000, 0.1, 5, t).size();
  CHECK(std::abs(joins - 20000) < 700);
  CHECK(poisson_participants(17, 1.0, 5, 1).size() == 17);
}

TEST_CASE("DP plan: delta, weights, fixed denominator, adaptive noise split, refusals", "[dp]") {
  DpConfig c;
  c.enabled = true;
  c.clip = 1.0;
  c.noise_multiplier = 1.0;
  const std::vector<std::int64_t> sizes{100, 50, 200, 150};
  auto plan = make_dp_plan(c, 0.5, sizes);
  CHECK(plan.delta == Approx(1.0 / 40));
  CHECK(plan.expected_participants == 2);
  CHECK(plan.denominator == 2);  // uniform: q·P, whoever took part
  c.weighting = DpWeighting::FixedN;
  plan = make_dp_plan(c, 0.5, sizes);
  CHECK(plan.weights == std::vector<double>{0.5, 0.25, 1.0, 0.75});
  CHECK(plan.denominator == Approx(0.5 * 2.5));
  // Adaptive clipping: z_Δ solves z⁻² = z_Δ⁻² + (2σ_b)⁻² (Andrew et al. 2021).
  c.clip_quantile = 0.5;
  c.clip_count_stddev = 1.0;
  plan = make_dp_plan(c, 0.5, sizes);
  CHECK(1 / (plan.update_noise_multiplier * plan.update_noise_multiplier) + 1.0 / 4 ==
        Approx(1.0));
  // Half under the clip and no noise: C stays; all under: C shrinks by exp(−η/2).
  CHECK(next_adaptive_clip(2.0, 0, plan) == Approx(2.0));
  CHECK(next_adaptive_clip(2.0, 1.0, plan) == Approx(2.0 * std::exp(-0.2 * 0.5)));
  // σ_b defaults to m/20 = 0.1 here: below z/2, refused with the way out.
  c.clip_count_stddev = 0;
  CHECK_THROWS_WITH(make_dp_plan(c, 0.5, sizes), Catch::Contains("--dp-clip-count-stddev"));
  c.clip_quantile = 0;
  c.delta = 0.25;  // = 1/P
  CHECK_THROWS_WITH(make_dp_plan(c, 0.5, sizes), Catch::Contains("below 1/parties"));
  c.delta = 0;
  c.clip = 0;
  CHECK_THROWS_WITH(make_dp_plan(c, 0.5, sizes), Catch::Contains("--dp-clip"));
  c.clip = 1;
  c.noise_multiplier = -1;
  CHECK_THROWS_WITH(make_dp_plan(c, 0.5, sizes), Catch::Contains("--dp-noise-multiplier"));
}

TEST_CASE("noised BatchNorm variances are raised to the floor, nothing else moves", "[dp]") {
  fedgan::models::ModelConfig c;
  c.latent_dim = 8;
  c.g_width = 4;
  c.d_width = 4;
  fedgan::models::Gan gan(c);
  auto& flat = gan.g_flat();
  {
    torch::NoGradGuard no_grad;
    flat.buffers_view().fill_(-0.5);  // running means and variances alike
  }
  const auto before = flat.snapshot();
  std::int64_t vars = 0;
  for (const auto& e : flat.entries())
    if (e.is_buffer && e.name.find("running_var") != std::string::npos) vars += e.numel;
  REQUIRE(vars > 0);
  CHECK(clamp_running_variances(flat, kRunningVarFloor) == vars);
  for (const auto& e : flat.entries()) {
    const auto now = flat.flat().narrow(0, e.offset, e.numel);
    if (e.is_buffer && e.name.find("running_var") != std::string::npos) {
      CHECK(torch::all(now == static_cast<float>(kRunningVarFloor)).item<bool>());
    } else {
      CHECK(torch::equal(now, before.narrow(0, e.offset, e.numel)));
    }
  }
  CHECK(clamp_running_variances(flat, kRunningVarFloor) == 0);
}
