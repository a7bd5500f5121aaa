// AdAM's kernel modulation (models/modulation.hpp, transfer/modulation.hpp): a zero modulation
// is the source exactly, shapes, the gradient reaching A, the plan that keeps G's base fixed and
// only the kept filters' rows moving, the probe's Fisher, the choice of filters and the mask file.
#include <catch2/catch.hpp>

#include "../temp_dir.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/federated/round/federated_trainer.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/models/modulation.hpp"
#include "fedgan/transfer/modulation.hpp"
#include "fedgan/transfer/warm_start.hpp"

using namespace fedgan;

namespace {

models::ModelConfig modulated_config(int rank, int size = 28, int classes = 0) {
  models::ModelConfig c;
  c.image_size = size;
  c.channels = size == 28 ? 1 : 3;
  c.latent_dim = 8;
  c.g_width = 6;
  c.d_width = 4;
  c.num_classes = classes;
  c.g_mod_rank = rank;
  return c;
}

std::vector<federated::LocalParty> modulation_parties(int n) {
  std::vector<federated::LocalParty> parties;
  for (int k = 0; k < n; ++k)
    parties.push_back({k, std::make_shared<data::TensorPartyData>(
                              torch::rand({16, 1, 28, 28}, compat::make_cpu_generator(k)) * 2 - 1,
                              torch::Tensor(), k)});
  return parties;
}

}  // namespace

TEST_CASE("a modulated dcgan G with A = 0 is the plain G bit for bit; shapes() = make()",
          "[models][modulation]") {
  for (int size : {28, 32}) {
    for (int classes : {0, 3}) {
      for (int rank : {1, 3}) {
        const auto plain_config = modulated_config(0, size, classes);
        const auto config = modulated_config(rank, size, classes);
        torch::manual_seed(1);
        models::Gan plain(plain_config);
        torch::manual_seed(2);
        models::Gan modulated(config);
        // The base from the plain model (the warm start's path); the modulation keeps A = 0.
        const auto report =
            transfer::load_partial(modulated.g_flat(), io::named_tensors(plain.g_flat()));
        CHECK(report.clean());
        CHECK(report.modulation.size() == 2 * models::modulated_layers(modulated.g_flat()).size());
        CHECK(report.loaded_numel == plain.g_flat().numel());
        const auto z = torch::randn({5, 8});
        const auto y = classes ? torch::tensor({0, 1, 2, 0, 1}, torch::kInt64) : torch::Tensor();
        for (bool train : {true, false}) {
          plain.train(train);
          modulated.train(train);
          torch::NoGradGuard no_grad;
          CHECK(torch::equal(plain.generator().forward(z, y), modulated.generator().forward(z, y)));
        }
        // The registry's shapes hold the modulation tensors.
        const auto shapes = models::ModelRegistry::instance().shapes(config);
        models::TensorShapes built;
        for (const auto& e : modulated.g_flat().entries()) built[e.name] = e.shape;
        CHECK(built == shapes.generator);
        CHECK(built.at("out.mod_a") == std::vector<std::int64_t>{config.channels, rank});
        CHECK(built.at("blocks.0.conv.mod_b") ==
              std::vector<std::int64_t>{config.latent_dim + (classes ? 32 : 0), rank});
      }
    }
  }
  // The text form: gm= only when modulated; absent reads as 0; TorchScript refuses it.
  auto c = modulated_config(2);
  CHECK(c.to_string() == "dcgan c=1 s=28 z=8 gw=6 dw=4 k=0 dn=batch gm=2");
  CHECK(models::ModelConfig::parse(c.to_string()).g_mod_rank == 2);
  CHECK(models::ModelConfig::parse("dcgan c=1 s=28 z=8 gw=6 dw=4 k=0 dn=batch").g_mod_rank == 0);
  CHECK(modulated_config(0).to_string().find("gm=") == std::string::npos);
  CHECK_THROWS_WITH(models::ModelConfig::parse("dcgan c=1 s=28 z=8 gw=6 dw=4 k=0 dn=batch gm=65"),
                    Catch::Contains("gm=65"));
  c.family = models::kTorchScriptFamily;
  c.script_id = "0123456789abcdef";
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("--modulation-rank"));
}

TEST_CASE("folding a modulation gives the plain G of W * (1 + A B^T)", "[models][modulation]") {
  torch::manual_seed(4);
  models::Gan modulated(modulated_config(2));
  {
    torch::NoGradGuard no_grad;
    for (const auto& l : models::modulated_layers(modulated.g_flat()))
      modulated.g_flat().flat().narrow(0, l.a_offset, l.filters * l.rank).normal_(0, 0.3);
  }
  auto folded = models::fold_modulation(io::named_tensors(modulated.g_flat()));
  for (const auto& [name, t] : folded) CHECK_FALSE(models::is_modulation_name(name));
  models::Gan plain(modulated_config(0));
  io::load_strict(plain.g_flat(), folded, "generator", "folded");
  plain.train(false);
  modulated.train(false);
  torch::NoGradGuard no_grad;
  const auto z = torch::randn({4, 8});
  const auto a = plain.generator().forward(z, {}), b = modulated.generator().forward(z, {});
  CHECK(torch::allclose(a, b, 1e-5, 1e-6));
  CHECK_FALSE(torch::equal(b, torch::zeros_like(b)));
}

TEST_CASE("a modulation's gradient reaches A; with its plan G's base never changes in a round",
          "[transfer][modulation]") {
  torch::manual_seed(5);
  models::Gan gan(modulated_config(1));
  const auto layers = models::modulated_layers(gan.g_flat());
  REQUIRE(layers.size() == 3);  // blocks.0.conv, blocks.1.conv, out
  CHECK(layers[0].prefix == "blocks.0.conv");
  CHECK(layers[2].prefix == "out");
  gan.g_grad().zero_();
  gan.generator().forward(torch::randn({3, 8}), {}).pow(2).sum().backward();
  for (const auto& l : layers)
    CHECK(gan.g_grad().narrow(0, l.a_offset, l.filters * l.rank).abs().sum().item<double>() > 0);

  // A round with a plan keeping filters 0, 2 of blocks.0 (of 12), all of blocks.1 (6), none of out.
  federated::FederatedConfig fc;
  fc.seed = 3;
  auto mask = torch::zeros({transfer::total_filters(layers)}, torch::kInt64);
  mask[0] = 1;
  mask[2] = 1;
  mask.narrow(0, layers[0].filters, layers[1].filters).fill_(1);
  transfer::add_modulation_masks(fc.freeze_g, layers, mask);
  train::LocalTrainConfig lc;
  lc.local_steps = 3;
  lc.batch_size = 8;
  auto serial = comm::make_serial_communicator();
  federated::FederatedTrainer t(*serial, modulated_config(1), lc, fc, modulation_parties(2), 2);
  auto& g = t.global().g_flat();
  const auto g0 = g.snapshot();
  for (int r = 1; r <= 2; ++r) t.run_round(r);
  for (const auto& e : g.entries()) {
    if (e.is_buffer || models::is_modulation_name(e.name)) continue;
    INFO(e.name);
    CHECK(torch::equal(g.flat().narrow(0, e.offset, e.numel), g0.narrow(0, e.offset, e.numel)));
  }
  auto a_row = [&](const models::ModulatedLayer& l, std::int64_t f) {
    return g.flat().narrow(0, l.a_offset + f * l.rank, l.rank);
  };
  CHECK(a_row(layers[0], 0).abs().sum().item<double>() > 0);
  CHECK(a_row(layers[0], 2).abs().sum().item<double>() > 0);
  CHECK(a_row(layers[0], 1).abs().sum().item<double>() == 0);  // not kept: still A = 0
  CHECK(a_row(layers[2], 0).abs().sum().item<double>() == 0);
  // out's B is frozen (no kept filter), blocks.0's B trains.
  auto b_of = [&](const models::ModulatedLayer& l, const torch::Tensor& flat) {
    return flat.narrow(0, l.b_offset, l.inputs * l.rank);
  };
  CHECK(torch::equal(b_of(layers[2], g.flat()), b_of(layers[2], g0)));
  CHECK_FALSE(torch::equal(b_of(layers[0], g.flat()), b_of(layers[0], g0)));
  // Aggregated: D (all), G's BN statistics, and only the kept rows of A and the trained Bs.
  const auto& d = t.global().d_flat();
  const std::int64_t g_mod = 2 * layers[0].rank + layers[1].filters * layers[1].rank +
                             (layers[0].inputs + layers[1].inputs) * layers[0].rank;
  CHECK(t.aggregated_numel() == d.numel() + (g.numel() - g.parameter_numel()) + g_mod);
}

TEST_CASE("the probe's Fisher, the filter choice (per layer, ties by index) and the mask file",
          "[transfer][modulation]") {
  std::vector<models::ModulatedLayer> layers(2);
  layers[0] = {"blocks.0.conv", 0, 8, 4, 2, 2};  // 4 filters x rank 2 at 0, B at 8
  layers[1] = {"out", 12, 14, 1, 2, 2};          // 1 filter x rank 2 at 12, B at 14
  transfer::FisherProbe probe(layers);
  probe.begin_party({});
  auto params = torch::zeros({18});
  for (int step = 0; step < 2; ++step) {
    auto grad = torch::zeros({18});
    // Filters 0 and 2 alike (a tie), filter 1 above them, filter 3 nothing; out's one filter.
    grad.narrow(0, 0, 8).copy_(torch::tensor({1.f, 1.f, 2.f, 0.f, 1.f, 1.f, 0.f, 0.f}));
    grad[12] = 3.f * static_cast<float>(step);
    probe.before_step(train::Net::Generator, params, grad);
    probe.before_step(train::Net::Discriminator, params, grad);  // not counted
  }
  const auto mean = probe.mean();
  CHECK(torch::equal(mean, torch::tensor({2.0, 4.0, 2.0, 0.0, 4.5}, torch::kFloat64)));
  // keep 0.5: ⌈2⌉ of blocks.0: filter 1 and the lower of the tie (0); out keeps its one filter.
  CHECK(torch::equal(transfer::select_filters(mean, layers, 0.5),
                     torch::tensor({1, 1, 0, 0, 1}, torch::kInt64)));
  CHECK(torch::equal(transfer::select_filters(mean, layers, 0.3),  // ⌈1.2⌉ = 2
                     torch::tensor({1, 1, 0, 0, 1}, torch::kInt64)));
  CHECK(torch::equal(transfer::select_filters(mean, layers, 0.25),
                     torch::tensor({0, 1, 0, 0, 1}, torch::kInt64)));
  CHECK(transfer::select_filters(mean, layers, 1.0).sum().item<std::int64_t>() == 5);

  testing::TempDir dir;
  transfer::ModulationMask m;
  m.mask = transfer::select_filters(mean, layers, 0.5);
  m.scores = mean;
  m.architecture = "dcgan c=1 s=28 z=8 gw=6 dw=4 k=0 dn=batch gm=2";
  m.keep = 0.5;
  m.probe_steps = 2;
  m.layers = {"blocks.0.conv", "out"};
  transfer::write_modulation_mask(dir.file("mask.h5"), m);
  const auto back = transfer::read_modulation_mask(dir.file("mask.h5"), "--modulation-mask",
                                                   m.architecture, layers);
  CHECK(torch::equal(back.mask, m.mask));
  CHECK(torch::equal(back.scores, m.scores));
  CHECK_THROWS_WITH(
      transfer::read_modulation_mask(dir.file("mask.h5"), "--modulation-mask",
                                     "dcgan c=1 s=28 z=8 gw=8 dw=4 k=0 dn=batch gm=2", layers),
      Catch::Contains("mask.h5 (--modulation-mask): a mask of model"));
  auto other = layers;
  other[1].prefix = "head";
  CHECK_THROWS_WITH(transfer::read_modulation_mask(dir.file("mask.h5"), "--modulation-mask",
                                                   m.architecture, other),
                    Catch::Contains("its layers differ"));
  CHECK_THROWS_WITH(transfer::check_modulation_mask(torch::ones({3}, torch::kInt64), "ck", layers),
                    Catch::Contains("ck: holds a mask of 3 filters"));
  CHECK_THROWS_WITH(
      transfer::check_modulation_mask(torch::full({5}, 2, torch::kInt64), "ck", layers),
      Catch::Contains("other than 0 and 1"));
}
