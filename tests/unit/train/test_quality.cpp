// Limited-data techniques: DiffAugment, the ADA controller, R1, spectral normalisation, the
// learning-rate schedule and the server-side generator EMA.
#include <catch2/catch.hpp>
#include <cmath>

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/data/party_data.hpp"
#include "fedgan/run/generator_ema.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/models/losses.hpp"
#include "fedgan/models/spectral_norm.hpp"
#include "fedgan/train/ada.hpp"
#include "fedgan/train/augment.hpp"
#include "fedgan/train/local_trainer.hpp"
#include "fedgan/train/lr_schedule.hpp"

using namespace fedgan;
using namespace fedgan::models;
using namespace fedgan::train;
using fedgan::run::GeneratorEma;

namespace {

ModelConfig tiny_config(models::DNorm d_norm = models::DNorm::Batch) {
  ModelConfig c;
  c.latent_dim = 8;
  c.g_width = 8;
  c.d_width = 8;
  c.d_norm = d_norm;
  return c;
}

// The largest singular value of a matrix by many power iterations in float64.
double top_singular_value(const torch::Tensor& w) {
  auto m = w.reshape({w.size(0), -1}).to(torch::kFloat64);
  auto v = torch::ones({m.size(1)}, torch::kFloat64);
  for (int i = 0; i < 500; ++i) v = torch::mv(m.t(), torch::mv(m, v)), v = v / v.norm();
  return torch::mv(m, v).norm().item<double>();
}

}  // namespace

TEST_CASE("augmentation policies parse and print; bad words are named", "[quality]") {
  CHECK(AugmentPolicy::parse("translation,cutout,color").to_string() == "translation,cutout,color");
  CHECK(AugmentPolicy::parse("color,translation").to_string() == "translation,color");
  CHECK_FALSE(AugmentPolicy::parse("none").any());
  CHECK_FALSE(AugmentPolicy::parse("").any());
  CHECK_THROWS_WITH(AugmentPolicy::parse("translation,flip"), Catch::Contains("'flip'"));
  CHECK_THROWS_WITH(AugmentPolicy::parse("cutout,cutout"), Catch::Contains("given twice"));
}

TEST_CASE("translation moves every image by at most 1/8 of its size and pads with zeros",
          "[quality]") {
  // One bright pixel per image at (10, 12): after the shift it is the only non-zero pixel, at
  // most round(28/8) = 4 rows and columns away; the draws differ between images.
  auto x = torch::zeros({64, 1, 28, 28});
  x.index_put_({torch::indexing::Slice(), 0, 10, 12}, 1.0);
  auto gen = compat::make_cpu_generator(7);
  const auto y = augment(x, AugmentPolicy::parse("translation"), 1.0, gen);
  REQUIRE(y.sizes() == x.sizes());
  int moved = 0;
  for (int b = 0; b < 64; ++b) {
    const auto img = y[b][0];
    REQUIRE(img.sum().item<double>() == 1.0);
    const auto at = img.flatten().argmax().item<std::int64_t>();
    const auto r = at / 28, c = at % 28;
    CHECK(std::abs(r - 10) <= 4);
    CHECK(std::abs(c - 12) <= 4);
    moved += (r != 10 || c != 12);
  }
  CHECK(moved > 32);
  // A constant image loses at most 4 rows and 4 columns to the zero padding.
  auto ones = torch::ones({16, 1, 28, 28});
  const auto shifted = augment(ones, AugmentPolicy::parse("translation"), 1.0, gen);
  const auto kept = shifted.sum({1, 2, 3});
  CHECK(kept.min().item<double>() >= 24.0 * 24.0);
  CHECK(shifted.eq(0).logical_or(shifted.eq(1)).all().item<bool>());
}

TEST_CASE("cutout zeroes one square of half the size, clipped at the edges", "[quality]") {
  auto gen = compat::make_cpu_generator(8);
  const auto y = augment(torch::ones({64, 1, 28, 28}), AugmentPolicy::parse("cutout"), 1.0, gen);
  const auto zeros = y.eq(0).sum({1, 2, 3});
  // Centred inside the image: at least a quarter of the 14x14 square stays in.
  CHECK(zeros.min().item<std::int64_t>() >= 7 * 7);
  CHECK(zeros.max().item<std::int64_t>() <= 14 * 14);
  CHECK(zeros.eq(14 * 14).any().item<bool>());
}

TEST_CASE("augmentation is seeded, differentiable, and p gates it per image", "[quality]") {
  const auto policy = AugmentPolicy::parse("translation,cutout,color");
  auto x = torch::rand({32, 1, 28, 28}, compat::make_cpu_generator(1)) * 2 - 1;
  auto g1 = compat::make_cpu_generator(5), g2 = compat::make_cpu_generator(5);
  CHECK(torch::equal(augment(x, policy, 1.0, g1), augment(x, policy, 1.0, g2)));
  // p = 0: unchanged, and the same number of draws as p = 1 (the streams stay aligned).
  auto g3 = compat::make_cpu_generator(5), g4 = compat::make_cpu_generator(5);
  CHECK(torch::equal(augment(x, policy, 0.0, g3), x));
  augment(x, policy, 1.0, g4);
  CHECK(torch::equal(torch::rand({4}, g3), torch::rand({4}, g4)));
  // p = 0.5: some images untouched, some changed.
  auto g5 = compat::make_cpu_generator(6);
  const auto half = augment(x, policy, 0.5, g5);
  const auto same = (half - x).abs().sum({1, 2, 3}).eq(0);
  CHECK(same.any().item<bool>());
  CHECK_FALSE(same.all().item<bool>());
  // Gradients reach the input through every operation.
  auto leaf = x.clone().requires_grad_(true);
  auto g6 = compat::make_cpu_generator(9);
  augment(leaf, policy, 1.0, g6).pow(2).sum().backward();
  REQUIRE(leaf.grad().defined());
  CHECK(leaf.grad().abs().sum().item<double>() > 0);
}

TEST_CASE("the ADA controller moves p toward the target's side and clamps it", "[quality]") {
  AdaController off(AdaConfig{});
  CHECK_FALSE(off.enabled());
  CHECK(off.probability() == 1.0);
  AdaController ada(AdaConfig{0.6, 10.0, 0.0});
  CHECK(ada.probability() == 0.0);
  // r_t = 0.9 > 0.6: D is overconfident on reals -> more augmentation, 1280 / 10000 per round.
  CHECK(ada.update(0.9 * 100, 100, 1280) == Approx(0.9));
  CHECK(ada.p() == Approx(0.128));
  ada.update(0.2 * 100, 100, 1280);  // below target: back down
  CHECK(ada.p() == Approx(0.0).margin(1e-12));
  ada.update(-10, 100, 1280);
  CHECK(ada.p() == 0.0);  // clamped
  for (int i = 0; i < 20; ++i) ada.update(100, 100, 1280);
  CHECK(ada.p() == 1.0);
  CHECK_THROWS_WITH(ada.set_p(1.5), Catch::Contains("outside [0, 1]"));
  CHECK_THROWS_AS(AdaController(AdaConfig{1.2, 10, 0}), Error);
}

TEST_CASE("R1 penalises the squared gradient norm on reals", "[quality]") {
  // D(x) = <w, x>: the gradient is w for every image, so R1 = |w|^2.
  auto w = torch::randn({1, 1, 28, 28}, compat::make_cpu_generator(2)).requires_grad_(true);
  auto x = torch::randn({6, 1, 28, 28}, compat::make_cpu_generator(3)).requires_grad_(true);
  const auto logits = (x * w).sum({1, 2, 3});
  const auto r1 = r1_penalty(logits, x);
  CHECK(r1.item<double>() == Approx(w.pow(2).sum().item<double>()).epsilon(1e-5));
  // The penalty itself trains D: d(R1)/dw = 2w.
  r1.backward();
  CHECK(torch::allclose(w.grad(), 2 * w.detach(), 1e-4, 1e-5));
}

TEST_CASE("spectral normalisation: sigma converges to the top singular value", "[quality]") {
  torch::manual_seed(11);
  SpectralConv2d conv(3, 16, 4, 2, 1);
  const double truth = top_singular_value(conv->weight);
  conv->train();
  torch::Tensor sigma;
  for (int i = 0; i < 60; ++i) sigma = spectral_sigma(conv->weight, conv->u, true);
  CHECK(sigma.item<double>() == Approx(truth).epsilon(1e-3));
  // The normalised weight has spectral norm 1; eval mode leaves u alone.
  CHECK(top_singular_value(conv->weight / sigma.detach()) == Approx(1.0).epsilon(1e-3));
  const auto u = conv->u.clone();
  conv->eval();
  conv->forward(torch::randn({2, 3, 8, 8}));
  CHECK(torch::equal(conv->u, u));
  conv->train();
  conv->forward(torch::randn({2, 3, 8, 8}));
  CHECK_FALSE(torch::equal(conv->u, u));
  // Gradients reach the raw weight through sigma.
  SpectralLinear lin(5, 3);
  lin->forward(torch::randn({4, 5})).sum().backward();
  CHECK(lin->weight.grad().abs().sum().item<double>() > 0);
}

TEST_CASE("a spectral D keeps its u vectors as buffers in the flat model", "[quality]") {
  torch::manual_seed(12);
  Gan gan(tiny_config(models::DNorm::Spectral));
  auto& flat = gan.d_flat();
  int u_count = 0;
  for (const auto& e : flat.entries()) {
    CHECK(e.name.find(".bn.") == std::string::npos);
    if (e.name.size() > 2 && e.name.compare(e.name.size() - 2, 2, ".u") == 0) {
      CHECK(e.is_buffer);
      ++u_count;
    }
  }
  CHECK(u_count == 3);  // two convolutions and the head
  CHECK(flat.aliases(gan.discriminator()));
  const auto before = flat.buffers_view().clone();
  gan.train(true);
  gan.discriminator().forward(torch::randn({4, 1, 28, 28}), {});
  CHECK_FALSE(torch::equal(flat.buffers_view(), before));  // u moved, in the flat buffer
  CHECK(ModelConfig::parse(tiny_config(models::DNorm::Spectral).to_string()).d_norm ==
        models::DNorm::Spectral);
}

TEST_CASE("learning-rate schedules run from 1 to the final ratio", "[quality]") {
  CHECK(lr_factor(LrSchedule::Constant, 7, 15, 0.1) == 1.0);
  for (auto s : {LrSchedule::Cosine, LrSchedule::Linear}) {
    CHECK(lr_factor(s, 1, 15, 0.1) == Approx(1.0));
    CHECK(lr_factor(s, 15, 15, 0.1) == Approx(0.1));
    CHECK(lr_factor(s, 8, 15, 0.1) == Approx(0.55));  // the middle round, both shapes
    CHECK(lr_factor(s, 30, 15, 0.1) == Approx(0.1));
  }
  CHECK(lr_factor(LrSchedule::Cosine, 4, 15, 0.0) > lr_factor(LrSchedule::Linear, 4, 15, 0.0));
  CHECK(parse_lr_schedule("cosine") == LrSchedule::Cosine);
  CHECK(to_string(parse_lr_schedule("linear")) == "linear");
  CHECK_THROWS_WITH(parse_lr_schedule("step"), Catch::Contains("constant, cosine or linear"));
}

TEST_CASE("the local trainer applies the round's learning rate", "[quality]") {
  torch::manual_seed(13);
  Gan gan(tiny_config());
  LocalTrainConfig cfg;
  cfg.local_steps = 1;
  cfg.batch_size = 4;
  cfg.lr_g = 1e-3;
  cfg.lr_d = 2e-3;
  cfg.lr_schedule = LrSchedule::Linear;
  cfg.lr_final_ratio = 0.2;
  cfg.schedule_rounds = 5;
  LocalTrainer trainer(cfg);
  auto opt = make_party_optimizers(gan, cfg);
  data::TensorPartyData data(torch::rand({8, 1, 28, 28}) * 2 - 1, {}, 1);
  auto gen = compat::make_cpu_generator(1);
  trainer.begin_party({0, 5, nullptr});
  trainer.run(gan, opt, data, 0, gen);
  CHECK(opt.g.options().lr == Approx(2e-4));
  CHECK(opt.d.options().lr == Approx(4e-4));
  trainer.begin_party({0, 1, nullptr});
  trainer.run(gan, opt, data, 1, gen);
  CHECK(opt.d.options().lr == Approx(2e-3));
}

TEST_CASE("limited-data local training: augmentation, R1, spectral D, ADA statistics",
          "[quality]") {
  auto run = [](double p) {
    torch::manual_seed(14);
    Gan gan(tiny_config(models::DNorm::Spectral));
    LocalTrainConfig cfg;
    cfg.local_steps = 4;
    cfg.batch_size = 8;
    cfg.augment = AugmentPolicy::parse("translation,cutout,color");
    cfg.r1_gamma = 1.0;
    cfg.r1_every = 2;
    cfg.reuse_fake = true;
    LocalTrainer trainer(cfg);
    trainer.set_augment_probability(p);
    auto opt = make_party_optimizers(gan, cfg);
    data::TensorPartyData data(torch::rand({24, 1, 28, 28}, compat::make_cpu_generator(1)) * 2 - 1,
                               {}, 9);
    auto gen = compat::make_cpu_generator(21);
    const auto r = trainer.run(gan, opt, data, 0, gen);
    CHECK(r.finite);
    CHECK(r.steps == 4);
    // sign(D(real)) counted once per real image D saw.
    CHECK(r.ada_count == 32);
    CHECK(std::abs(r.ada_sign_sum) <= 32);
    return gan.g_flat().snapshot();
  };
  const auto a = run(1.0);
  CHECK(torch::equal(a, run(1.0)));  // seeded: same arithmetic, same result
  CHECK_FALSE(torch::equal(a, run(0.3)));
}

TEST_CASE("the generator EMA averages parameters and copies buffers", "[quality]") {
  auto start = torch::tensor({0.0f, 0.0f, 5.0f});
  GeneratorEma ema(0.9, start, 2);
  CHECK(ema.beta_at(1) == Approx(2.0 / 11.0));
  CHECK(ema.beta_at(1000) == Approx(0.9));
  ema.update(torch::tensor({1.0f, 2.0f, 7.0f}), 1);
  const double b = 2.0 / 11.0;
  CHECK(ema.values()[0].item<double>() == Approx(1 - b));
  CHECK(ema.values()[1].item<double>() == Approx(2 * (1 - b)));
  CHECK(ema.values()[2].item<double>() == 7.0);  // a buffer: copied
  CHECK(start[0].item<double>() == 0.0);         // the average owns its values
  CHECK_THROWS_WITH(ema.load(torch::zeros({4})), Catch::Contains("expected 3 values"));
  CHECK_THROWS_AS(GeneratorEma(1.0, start, 2), Error);
}
