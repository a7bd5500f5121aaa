// Models: shapes, registry, flat gradients, flat Adam vs torch Adam, losses, one local step.
#include <catch2/catch.hpp>

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/models/losses.hpp"
#include "fedgan/train/flat_adam.hpp"
#include "fedgan/train/local_trainer.hpp"

#include <cmath>

using namespace fedgan;

namespace {
models::ModelConfig small_config(int size = 28, int classes = 0) {
  models::ModelConfig c;
  c.image_size = size;
  c.latent_dim = 8;
  c.g_width = 8;
  c.d_width = 8;
  c.num_classes = classes;
  return c;
}
}  // namespace

TEST_CASE("DCGAN shapes for 28, 32, 64 and 128 pixels, grey or RGB, conditional or not",
          "[models]") {
  for (int size : {28, 32, 64, 128}) {
    for (int channels : {1, 3}) {
      for (int classes : {0, 10}) {
        torch::manual_seed(0);
        auto cfg = small_config(size, classes);
        cfg.channels = channels;
        models::Gan gan(cfg);
        auto labels = classes ? torch::randint(0, classes, {5}, torch::kInt64) : torch::Tensor();
        auto x = gan.generator().forward(torch::randn({5, cfg.latent_dim}), labels);
        CHECK(x.sizes().vec() == std::vector<std::int64_t>{5, cfg.channels, size, size});
        CHECK(x.abs().max().item<float>() <= 1.0f);
        auto logits = gan.discriminator().forward(x, labels);
        CHECK(logits.sizes().vec() == std::vector<std::int64_t>{5});
      }
    }
  }
  CHECK_THROWS_WITH(models::Gan(small_config(30)),
                    Catch::Contains("image size 30 is not supported by dcgan (expected 28, 32, "
                                    "64 or 128)"));
  CHECK_THROWS_AS(models::Gan(small_config(256)), Error);
  auto bad = small_config();
  bad.family = "stylegan9";
  CHECK_THROWS_WITH(models::Gan(bad), Catch::Contains("unknown family"));
}

TEST_CASE("architecture strings round-trip", "[models]") {
  auto c = small_config(32, 7);
  c.d_norm = models::DNorm::None;
  CHECK(models::ModelConfig::parse(c.to_string()) == c);
  CHECK_THROWS_AS(models::ModelConfig::parse("dcgan q=1"), Error);
}

TEST_CASE("architecture strings: bad numbers, ranges and missing keys are named", "[models]") {
  const std::string good = "dcgan c=1 s=28 z=8 gw=8 dw=8 k=0 dn=batch";
  CHECK(models::ModelConfig::parse(good).g_width == 8);
  auto fails = [](const std::string& text, const std::string& expected) {
    CHECK_THROWS_WITH(models::ModelConfig::parse(text), Catch::Contains(expected));
  };
  fails("dcgan c=1 s=28 z=8 gw=99999999999999 dw=8 k=0 dn=batch",
        "'gw=99999999999999' is not an integer");
  fails("dcgan c=1 s=28 z=8 gw=8abc dw=8 k=0 dn=batch", "'gw=8abc' is not an integer");
  fails("dcgan c=1 s=28 z=8 gw=8192 dw=8 k=0 dn=batch",
        "gw=8192 (generator width) is outside [2, 4096]");
  fails("dcgan c=1 s=28 z=8 gw=8 dw=0 k=0 dn=batch", "dw=0");
  fails("dcgan c=1 s=28 z=8 gw=8 dw=8 k=-1 dn=batch", "k=-1");
  fails("dcgan c=1 s=28 z=8 gw=8 dw=8 k=0 dn=layer", "dn=layer is unknown");
  fails("dcgan c=1 s=28 z=8 gw=8 dw=8 k=0", "'dn=' is missing");
  fails("dcgan c=1 c=1 s=28 z=8 gw=8 dw=8 k=0 dn=batch", "'c' is given twice");
  fails("c=1 s=28", "not with the model family");
  fails("", "empty");
}

TEST_CASE("the registry knows a model's shapes without building it", "[models]") {
  for (int size : {28, 32, 64, 128}) {
    for (int classes : {0, 3}) {
      for (auto norm : {models::DNorm::Batch, models::DNorm::None, models::DNorm::Spectral}) {
        auto cfg = small_config(size, classes);
        cfg.channels = size == 28 ? 1 : 3;
        cfg.g_width = 6;
        cfg.d_width = 5;
        cfg.d_norm = norm;
        models::Gan gan(cfg);
        const auto shapes = models::ModelRegistry::instance().shapes(cfg);
        for (auto [flat, expected] : {std::pair{&gan.g_flat(), &shapes.generator},
                                      std::pair{&gan.d_flat(), &shapes.discriminator}}) {
          models::TensorShapes built;
          for (const auto& e : flat->entries()) built[e.name] = e.shape;
          CHECK(built == *expected);
        }
      }
    }
  }
  auto bad = small_config(30);
  CHECK_THROWS_WITH(models::ModelRegistry::instance().shapes(bad),
                    Catch::Contains("image size 30"));
}

TEST_CASE("backward fills the flat gradient buffer in place", "[models]") {
  torch::manual_seed(1);
  models::Gan gan(small_config());
  auto before = gan.d_grad().data_ptr();
  auto x = torch::randn({4, 1, 28, 28});
  gan.discriminator().forward(x, {}).sum().backward();
  CHECK(gan.d_grad().data_ptr() == before);
  CHECK(gan.d_grad().abs().sum().item<double>() > 0);
  for (auto& p : gan.discriminator().parameters()) {
    const auto* base = static_cast<const char*>(gan.d_grad().data_ptr());
    const auto* g = static_cast<const char*>(p.grad().data_ptr());
    CHECK(g >= base);
    CHECK(g < base + gan.d_grad().numel() * 4);
  }
}

TEST_CASE("FlatAdam follows torch::optim::Adam to rounding", "[train]") {
  torch::manual_seed(2);
  models::Gan a(small_config());
  torch::manual_seed(2);
  models::Gan b(small_config());
  // The reference trains ordinary (non-view) gradients, which torch's zero_grad() expects.
  for (auto& p : a.discriminator().parameters()) p.mutable_grad() = torch::Tensor();
  torch::optim::Adam reference(a.discriminator().parameters(),
                               torch::optim::AdamOptions(1e-2).betas({0.5, 0.999}).eps(1e-8));
  train::FlatAdam flat(b.d_flat().parameters_view(), b.d_grad(),
                       train::AdamOptions{1e-2, 0.5, 0.999, 1e-8});
  const auto before = b.d_flat().parameters_view().clone();
  for (int step = 0; step < 5; ++step) {
    auto x = torch::randn({4, 1, 28, 28});
    reference.zero_grad();
    a.discriminator().forward(x, {}).pow(2).mean().backward();
    reference.step();
    b.d_grad().zero_();
    b.discriminator().forward(x, {}).pow(2).mean().backward();
    flat.step();
  }
  // Same formula, not the same arithmetic: torch steps each tensor, FlatAdam one flat buffer,
  // so other elements fall in the vectorised body or the scalar tail of each loop (fused or
  // separate multiply-add, by CPU), and the trajectories may part by rounding: parts per
  // million of lr at most (they agreed exactly where this was written; no CPU promises that). A
  // formula error (bias correction, eps, betas) moves parameters by a fraction of lr.
  const double lr = 1e-2;
  const auto moved = (b.d_flat().parameters_view() - before).abs().max().item<double>();
  const double diff =
      (a.d_flat().parameters_view() - b.d_flat().parameters_view()).abs().max().item<double>();
  CHECK(moved > 0.5 * lr);  // the steps were taken
  CHECK(diff < 1e-4 * lr);
  CHECK(flat.step_count() == 5);
}

TEST_CASE("loss values on known logits", "[models]") {
  auto zero = torch::zeros({4});
  auto bce = models::make_loss(models::LossKind::Bce);
  CHECK(bce->d_loss(zero, zero).item<double>() == Approx(2 * std::log(2.0)));
  CHECK(bce->g_loss(zero).item<double>() == Approx(std::log(2.0)));
  auto hinge = models::make_loss(models::LossKind::Hinge);
  CHECK(hinge->d_loss(torch::full({2}, 2.0), torch::full({2}, -2.0)).item<double>() == 0.0);
  CHECK(hinge->g_loss(torch::full({2}, 3.0)).item<double>() == -3.0);
  auto wgan = models::make_loss(models::LossKind::WganGp, 5.0);
  CHECK(wgan->d_loss(torch::full({2}, 1.0), torch::full({2}, 0.25)).item<double>() == -0.75);
  CHECK(wgan->gradient_penalty_weight() == 5.0);
  CHECK_THROWS_WITH(models::parse_loss("mse"), Catch::Contains("unknown loss 'mse'"));
  CHECK(models::parse_loss("wgan-gp") == models::LossKind::WganGp);
  CHECK(wgan->name() == "wgan-gp");
}

TEST_CASE("gradient penalty is non-negative and differentiable", "[models]") {
  torch::manual_seed(3);
  auto cfg = small_config();
  cfg.d_norm = models::DNorm::None;
  models::Gan gan(cfg);
  auto gen = compat::make_cpu_generator(3);
  auto gp = models::gradient_penalty(gan.discriminator(), torch::randn({4, 1, 28, 28}),
                                     torch::randn({4, 1, 28, 28}), {}, gen);
  CHECK(gp.item<double>() >= 0);
  gp.backward();
  CHECK(gan.d_grad().abs().sum().item<double>() > 0);
}

TEST_CASE("one local step lowers D's loss on a fixed batch", "[train]") {
  torch::manual_seed(4);
  models::Gan gan(small_config());
  train::LocalTrainConfig cfg;
  cfg.lr_d = 1e-3;
  train::LocalTrainer trainer(cfg);
  auto opt = train::make_party_optimizers(gan, cfg);
  auto real = torch::rand({32, 1, 28, 28}) * 2 - 1;
  torch::Tensor fake;
  {
    torch::NoGradGuard g;
    fake = gan.generator().forward(torch::randn({32, 8}), {});
  }
  auto loss = models::make_loss(models::LossKind::Bce);
  auto d_loss = [&] {
    torch::NoGradGuard g;
    return loss->d_loss(gan.discriminator().forward(real, {}), gan.discriminator().forward(fake, {}))
        .item<double>();
  };
  const double before = d_loss();
  auto gen = compat::make_cpu_generator(4);
  for (int i = 0; i < 3; ++i) trainer.step(gan, opt, {real, {}}, gen);
  CHECK(d_loss() < before);
}

TEST_CASE("local training is deterministic for a seed", "[train]") {
  auto run = [] {
    torch::manual_seed(5);
    models::Gan gan(small_config(28, 3));
    train::LocalTrainConfig cfg;
    cfg.local_steps = 3;
    cfg.batch_size = 8;
    train::LocalTrainer trainer(cfg);
    auto opt = train::make_party_optimizers(gan, cfg);
    data::TensorPartyData data(torch::rand({20, 1, 28, 28}, compat::make_cpu_generator(1)) * 2 - 1,
                                torch::arange(20, torch::kInt64) % 3, 9);
    auto gen = compat::make_cpu_generator(11);
    auto r = trainer.run(gan, opt, data, 0, gen);
    CHECK(r.steps == 3);
    CHECK(r.images == 24);
    return gan.g_flat().snapshot();
  };
  CHECK(torch::equal(run(), run()));
}
