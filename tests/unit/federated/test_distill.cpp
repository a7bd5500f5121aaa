// Federated distillation: UA-GAN's combination and the image feedback against hand-computed
// values, the discriminator specs, the parties' own Ds, and a DistillTrainer round with its state.
#include <catch2/catch.hpp>
#include <cmath>

#include "federated/toy_federation.hpp"
#include "fedgan/comm/communicator.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/federated/distill/distill_config.hpp"
#include "fedgan/federated/distill/distill_trainer.hpp"
#include "fedgan/federated/distill/ua_feedback.hpp"

using namespace fedgan;
using namespace fedgan::federated;

namespace {

double softplus_of(double x) { return std::log1p(std::exp(x)); }
double sigmoid_of(double x) { return 1 / (1 + std::exp(-x)); }

train::LocalTrainConfig distill_local() {
  train::LocalTrainConfig c;
  c.local_steps = 3;
  c.batch_size = 4;
  return c;
}

}  // namespace

TEST_CASE("distill: UA-GAN's combination of two parties' logits, by hand", "[distill]") {
  // Party 0: n = 1, logits (0, 2); party 1: n = 3, logits (1, -1).
  const auto s = torch::tensor({0.0, 2.0, 1.0, -1.0}, torch::kFloat64).view({2, 2});
  const auto ua = ua_combine(s, torch::tensor({1.0, 3.0}, torch::kFloat64));
  for (int i = 0; i < 2; ++i) {
    const double s0 = s[0][i].item<double>(), s1 = s[1][i].item<double>();
    const double odds = 0.25 * std::exp(s0) + 0.75 * std::exp(s1);  // Σ π_j D_j/(1 − D_j)
    const double l = std::log(odds);
    CHECK(ua.logits[i].item<double>() == Approx(l).epsilon(1e-14));
    const double w0 = 0.25 * std::exp(s0) / odds;
    CHECK(ua.weights[0][i].item<double>() == Approx(w0).epsilon(1e-14));
    CHECK(ua.weights[1][i].item<double>() == Approx(1 - w0).epsilon(1e-14));
    CHECK(ua.dloss[i].item<double>() == Approx(-sigmoid_of(-l) / 2).epsilon(1e-14));
    CHECK(ua.cotangents[0][i].item<double>() == Approx(-sigmoid_of(-l) / 2 * w0).epsilon(1e-14));
  }
  const double l0 = std::log(0.25 + 0.75 * std::exp(1.0));
  const double l1 = std::log(0.25 * std::exp(2.0) + 0.75 * std::exp(-1.0));
  CHECK(ua.g_loss == Approx((softplus_of(-l0) + softplus_of(-l1)) / 2).epsilon(1e-14));
  // One party: UA's logit is that party's, so G's loss is the plain non-saturating loss.
  const auto one = ua_combine(s.narrow(0, 0, 1), torch::tensor({5.0}, torch::kFloat64));
  CHECK(torch::allclose(one.logits, s[0], 0, 1e-15));
  // Logits far beyond exp's range stay finite (logsumexp).
  const auto big = ua_combine(torch::tensor({800.0, -800.0}, torch::kFloat64).view({2, 1}),
                              torch::tensor({1.0, 1.0}, torch::kFloat64));
  CHECK(big.logits[0].item<double>() == Approx(800 + std::log(0.5)));
  CHECK(std::isfinite(big.g_loss));
}

TEST_CASE("distill: MD-GAN's mean of the parties' losses, by hand", "[distill]") {
  const auto s = torch::tensor({0.0, 2.0, 1.0, -1.0}, torch::kFloat64).view({2, 2});
  const auto mean = mean_combine(s, torch::tensor({1.0, 3.0}, torch::kFloat64));
  const double l0 = (softplus_of(-0.0) + softplus_of(-2.0)) / 2;
  const double l1 = (softplus_of(-1.0) + softplus_of(1.0)) / 2;
  CHECK(mean.g_loss == Approx(0.25 * l0 + 0.75 * l1).epsilon(1e-14));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      CHECK(
          mean.cotangents[j][i].item<double>() ==
          Approx((j == 0 ? 0.25 : 0.75) * -sigmoid_of(-s[j][i].item<double>()) / 2).epsilon(1e-14));
  CHECK(feedback_combines().parse("mean").value == FeedbackCombine::Mean);
}

TEST_CASE("distill: the aggregated image feedback equals the hand-computed gradient", "[distill]") {
  // Two linear discriminators s_j(x) = a_j·x + b_j on images of 1×2×2, a batch of 2: the exact
  // gradient of G's loss on image i is −σ(−ℓ_i)/B · Σ_j w_ij a_j.
  auto comm = comm::make_serial_communicator();
  const auto x =
      torch::tensor({0.5f, -0.25f, 0.1f, 0.9f, -0.6f, 0.3f, 0.2f, -0.8f}).view({2, 1, 2, 2});
  const std::vector<torch::Tensor> a = {torch::tensor({1.0f, -2.0f, 0.5f, 0.0f}),
                                        torch::tensor({-0.5f, 1.5f, 2.0f, -1.0f})};
  const std::vector<float> b = {0.3f, -0.2f};
  FeedbackAggregator agg({10, 30});  // π = (1/4, 3/4)
  agg.begin_step({0, 1}, 2);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> kept;
  for (int j = 0; j < 2; ++j) {
    auto xi = x.clone().requires_grad_(true);
    auto logits =
        (xi.view({2, 4}) * a[static_cast<std::size_t>(j)]).sum(1) + b[static_cast<std::size_t>(j)];
    agg.add_logits(j, logits, 0.5 * j);
    kept.emplace_back(logits, xi);
  }
  const auto outcome = agg.reduce_logits(*comm);
  REQUIRE_FALSE(outcome.stop);
  REQUIRE(outcome.nonfinite_party == -1);
  CHECK(outcome.d_loss_sum == 0.5);
  for (int j = 0; j < 2; ++j)
    agg.add_feedback(j, party_feedback(kept[static_cast<std::size_t>(j)].first,
                                       kept[static_cast<std::size_t>(j)].second, agg.cotangent(j)));
  const auto feedback = agg.reduce_feedback(*comm, {2, 1, 2, 2});
  for (int i = 0; i < 2; ++i) {
    double s[2];
    for (int j = 0; j < 2; ++j)
      s[j] =
          (x[i].view({4}).to(torch::kFloat64) * a[static_cast<std::size_t>(j)].to(torch::kFloat64))
              .sum()
              .item<double>() +
          b[static_cast<std::size_t>(j)];
    const double odds = 0.25 * std::exp(s[0]) + 0.75 * std::exp(s[1]);
    const double w0 = 0.25 * std::exp(s[0]) / odds, w1 = 1 - w0;
    const double scale = -sigmoid_of(-std::log(odds)) / 2;
    const auto expect = (scale * (w0 * a[0].to(torch::kFloat64) + w1 * a[1].to(torch::kFloat64)))
                            .to(torch::kFloat32);
    CHECK(torch::allclose(feedback[i].view({4}), expect, 1e-6, 1e-7));
  }
  // A NaN logit names its party; a stop on any rank is seen by all.
  agg.begin_step({0, 1}, 2);
  agg.add_logits(0, torch::zeros({2}), 0);
  agg.add_logits(1, torch::tensor({0.0f, NAN}), 0);
  CHECK(agg.reduce_logits(*comm).nonfinite_party == 1);
  agg.begin_step({0, 1}, 2);
  agg.set_stop();
  CHECK(agg.reduce_logits(*comm).stop);
}

TEST_CASE("distill: norm bounding scales each party's feedback to the median norm, by hand",
          "[distill]") {
  auto comm = comm::make_serial_communicator();
  FeedbackAggregator agg({5, 5, 5}, /*bound_norms=*/true);
  agg.begin_step({0, 1, 2}, 1);
  // Norms 1, 2 and 100: the bound is the median, 2; only party 2 is scaled (by 2/100).
  const auto f0 = torch::tensor({0.6f, 0.8f}).view({1, 2}),
             f1 = torch::tensor({0.0f, 2.0f}).view({1, 2});
  const auto f2 = torch::tensor({60.0f, -80.0f}).view({1, 2});
  agg.add_feedback(2, f2);
  agg.add_feedback(0, f0);
  agg.add_feedback(1, f1);
  const auto sum = agg.reduce_feedback(*comm, {1, 2});
  CHECK(agg.last_bound() == Approx(2.0));
  CHECK(agg.last_clipped() == 1);
  const auto expect =
      (f0.to(torch::kFloat64) + f1.to(torch::kFloat64) + f2.to(torch::kFloat64) * (2.0 / 100.0))
          .to(torch::kFloat32);
  CHECK(torch::allclose(sum, expect, 1e-6, 1e-7));
  // Without bounding: the plain sum.
  FeedbackAggregator plain({5, 5, 5});
  plain.begin_step({0, 1, 2}, 1);
  for (const auto& [k, f] : {std::make_pair(0, f0), std::make_pair(1, f1), std::make_pair(2, f2)})
    plain.add_feedback(k, f);
  CHECK(torch::allclose(plain.reduce_feedback(*comm, {1, 2}), f0 + f1 + f2));
}

TEST_CASE("distill: discriminator specs parse, and bad ones are named", "[distill]") {
  auto s = parse_discriminator_spec("dw=16,dn=spectral");
  CHECK(s.d_width == 16);
  CHECK(s.d_norm == models::DNorm::Spectral);
  CHECK(s.script.empty());
  CHECK(parse_discriminator_spec("dn=none").d_norm == models::DNorm::None);
  CHECK_FALSE(parse_discriminator_spec("dn=none").d_width);
  CHECK(parse_discriminator_spec("script:models/D.pt").script == "models/D.pt");
  CHECK_FALSE(parse_discriminator_spec("default").d_width);
  CHECK_THROWS_WITH(parse_discriminator_spec("dw=0"), Catch::Contains("dw=0 is not a width"));
  CHECK_THROWS_WITH(parse_discriminator_spec("dw=8x"), Catch::Contains("dw=8x"));
  CHECK_THROWS_WITH(parse_discriminator_spec("dn=layer"),
                    Catch::Contains("expected batch, none or spectral"));
  CHECK_THROWS_WITH(parse_discriminator_spec("dw=8,dw=16"), Catch::Contains("each once"));
  CHECK_THROWS_WITH(parse_discriminator_spec("width=8"),
                    Catch::Contains("--party-discriminators: entry 'width=8'"));
  CHECK_THROWS_WITH(parse_discriminator_spec("script:"), Catch::Contains("needs a path"));
  CHECK(federations().parse("distill").value == Federation::Distill);
}

TEST_CASE("distill: a round trains G from the parties' own Ds of different architectures",
          "[distill]") {
  auto comm = comm::make_serial_communicator();
  DistillConfig dc;
  dc.discriminators = {parse_discriminator_spec("dw=4,dn=batch"),
                       parse_discriminator_spec("dw=8,dn=spectral"),
                       parse_discriminator_spec("dn=none")};
  dc.script_archives.resize(3);
  FederatedConfig fc;
  fc.seed = 7;
  fc.optimizer_state = OptimizerState::Keep;
  auto make = [&](models::Gan& gan) {
    return std::make_unique<DistillTrainer>(*comm, gan, distill_local(), fc, dc,
                                            fedgan::testing::toy_parties({9, 12, 15, 6}, 1, 2), 4);
  };
  torch::manual_seed(7);
  models::Gan gan(fedgan::testing::toy_model());
  auto trainer = make(gan);
  const auto& ds = trainer->discriminators();
  REQUIRE(ds.size() == 4);
  CHECK(ds[1]->flat.numel() != ds[0]->flat.numel());  // its own width
  CHECK(ds[3]->spec == "dw=4,dn=batch");              // cycled: party 3 gets entry 0
  CHECK(ds[3]->flat.numel() == ds[0]->flat.numel());
  CHECK_FALSE(torch::equal(ds[3]->flat.flat(), ds[0]->flat.flat()));  // seeded by party id
  const auto g0 = gan.g_flat().snapshot();
  const auto d0 = ds[2]->flat.snapshot();
  const auto r1 = trainer->run_round(1);
  CHECK(r1.parties == 4);
  CHECK(r1.samples == 42);
  CHECK(r1.images == (4 + 4 + 4 + 4) * 3);
  CHECK(std::isfinite(r1.d_loss));
  CHECK(std::isfinite(r1.g_loss));
  CHECK_FALSE(torch::equal(gan.g_flat().flat(), g0));
  CHECK_FALSE(torch::equal(ds[2]->flat.flat(), d0));
  // The state round trip: a second trainer loaded from the first's state continues identically.
  const auto party_state = trainer->party_state_tensors();
  const auto server_state = trainer->server_state();
  models::Gan gan2(fedgan::testing::toy_model());
  gan2.copy_from(gan);
  auto resumed = make(gan2);
  resumed->load_server_state(server_state);
  resumed->load_party_state_tensors(party_state);
  trainer->run_round(2);
  resumed->run_round(2);
  CHECK(torch::equal(gan.g_flat().flat(), gan2.g_flat().flat()));
  for (std::size_t k = 0; k < 4; ++k)
    CHECK(torch::equal(ds[k]->flat.flat(), resumed->discriminators()[k]->flat.flat()));
  // An interrupted round puts G and the Ds back.
  const auto g2 = gan.g_flat().snapshot();
  int asked = 0;
  const auto r3 = trainer->run_round(3, [&] { return ++asked == 2; });
  CHECK(r3.interrupted);
  CHECK(torch::equal(gan.g_flat().flat(), g2));
  CHECK(torch::equal(ds[0]->flat.flat(), resumed->discriminators()[0]->flat.flat()));
}

TEST_CASE("distill: partial participation trains only the drawn parties' Ds", "[distill]") {
  auto comm = comm::make_serial_communicator();
  FederatedConfig fc;
  fc.seed = 11;
  fc.participation = 0.5;
  torch::manual_seed(11);
  models::Gan gan(fedgan::testing::toy_model());
  DistillTrainer trainer(*comm, gan, distill_local(), fc, DistillConfig{},
                         fedgan::testing::toy_parties({9, 12, 15, 6}, 1, 2), 4);
  std::vector<torch::Tensor> before;
  for (const auto& d : trainer.discriminators()) before.push_back(d->flat.snapshot());
  const auto r = trainer.run_round(1);
  const auto drawn = sample_participants(4, 0.5, 11, 1);
  CHECK(r.parties == 2);
  for (std::size_t k = 0; k < 4; ++k) {
    const bool took_part = std::binary_search(drawn.begin(), drawn.end(), static_cast<int>(k));
    CHECK(torch::equal(trainer.discriminators()[k]->flat.flat(), before[k]) == !took_part);
  }
}

TEST_CASE("distill: a D that does not give one logit per image is named with its party",
          "[distill]") {
  // A spec of an unsupported built-in size fails with the party and the spec; a TorchScript D
  // of the wrong output shape is tested end to end (cli.distill.errors).
  auto model = fedgan::testing::toy_model();
  model.image_size = 20;
  const auto spec = parse_discriminator_spec("dw=8");
  CHECK_THROWS_WITH(make_party_discriminator(model, &spec, "", 2, 0, 1e-3, 0.5, 0.999, torch::kCPU),
                    Catch::Contains("party 2's discriminator 'dw=8'"));
}
