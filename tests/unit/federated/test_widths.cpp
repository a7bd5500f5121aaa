// Width-heterogeneous parties (HeteroFL): sub-model slices of the global flat buffers, the
// per-coordinate FedAvg over the levels that hold each value, and rounds of a federation of
// widths (a coordinate no participant holds stays unchanged; all ratios 1 is plain FedAvg).
#include <catch2/catch.hpp>

#include "federated/toy_federation.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/federated/aggregation/aggregator.hpp"
#include "fedgan/federated/round/federated_trainer.hpp"
#include "fedgan/federated/round/width_levels.hpp"
#include "fedgan/models/width.hpp"

using namespace fedgan;
using namespace fedgan::federated;

namespace {

models::ModelConfig width_toy() {
  auto c = testing::toy_model();
  c.g_width = 8;
  c.d_width = 8;
  return c;
}

train::LocalTrainConfig width_local() {
  train::LocalTrainConfig c;
  c.local_steps = 2;
  c.batch_size = 8;
  return c;
}

// Every tensor of `sub` equals the leading block of the same-named tensor of `global`.
void check_leading_blocks(torch::nn::Module& global, torch::nn::Module& sub) {
  auto whole = global.named_parameters(true);
  for (const auto& b : global.named_buffers(true)) whole.insert(b.key(), b.value());
  std::size_t seen = 0;
  auto check = [&](const std::string& name, const torch::Tensor& part) {
    auto block = whole[name];
    for (int64_t dim = 0; dim < part.dim(); ++dim) block = block.narrow(dim, 0, part.size(dim));
    INFO(name);
    CHECK(torch::equal(block, part));
    ++seen;
  };
  for (const auto& p : sub.named_parameters(true)) check(p.key(), p.value());
  for (const auto& b : sub.named_buffers(true))
    if (b.value().is_floating_point()) check(b.key(), b.value());
  CHECK(seen > 4);
}

}  // namespace

TEST_CASE("a width sub-model is the leading block of every global tensor", "[widths]") {
  torch::manual_seed(3);
  models::Gan global(width_toy());
  // Distinct values everywhere, so a wrong index cannot match by accident.
  {
    torch::NoGradGuard no_grad;
    global.g_flat().flat().copy_(torch::arange(global.g_flat().numel(), torch::kFloat32));
    global.d_flat().flat().copy_(-torch::arange(global.d_flat().numel(), torch::kFloat32));
  }
  for (double r : {1.0, 0.5, 0.25}) {
    auto sub = models::make_submodel(global, r, /*scaler=*/true, "test");
    CHECK(sub->config().g_width == static_cast<int>(8 * r));
    check_leading_blocks(global.generator(), sub->generator());
    check_leading_blocks(global.discriminator(), sub->discriminator());
    // It still makes images of the global model's shape, and one logit per image.
    const auto x = sub->generator().forward(torch::randn({2, 8}), {});
    CHECK(x.sizes() == torch::IntArrayRef({2, 1, 28, 28}));
    CHECK(sub->discriminator().forward(x, {}).sizes() == torch::IntArrayRef({2}));
  }
  // The slice's index maps the sub-model's flat buffer onto the global one.
  models::Gan quarter(models::width_config(global.config(), 0.25, "test"));
  const auto slice = models::width_slice(global, quarter);
  CHECK(slice.g.numel() == quarter.g_flat().numel());
  CHECK(std::get<0>(torch::_unique(slice.g)).numel() == slice.g.numel());
  CHECK(slice.g.max().item<std::int64_t>() < global.g_flat().numel());
}

TEST_CASE("width ratios that cannot be trained are refused with the reason", "[widths]") {
  const auto c = width_toy();
  CHECK_THROWS_WITH(models::width_config(c, 0, "--width-ratios: party 2"),
                    Catch::Contains("party 2") && Catch::Contains("outside (0, 1]"));
  CHECK_THROWS_WITH(models::width_config(c, 1.5, "x"), Catch::Contains("outside (0, 1]"));
  CHECK_THROWS_WITH(models::width_config(c, 0.1, "x"),
                    Catch::Contains("leaves a layer with no channel") &&
                        Catch::Contains("smallest ratio of this model is 0.125"));
  CHECK(models::width_config(c, 0.125, "x").g_width == 1);
  auto script = c;
  script.family = "torchscript";
  CHECK_THROWS_WITH(models::width_config(script, 0.5, "x"),
                    Catch::Contains("TorchScript model cannot be sliced"));
}

TEST_CASE("fedavg over width levels averages each coordinate over its holders", "[widths]") {
  auto comm = comm::make_serial_communicator();
  auto agg = make_aggregator(AggregatorConfig{}, {4, 0, 2, 0}, torch::kCPU, *comm);
  auto mask = [](std::vector<double> v) { return torch::tensor(v, torch::kFloat64); };
  const auto empty = torch::zeros({0}, torch::kFloat64);
  // Level 0 holds every coordinate; level 1 the first half of each segment.
  agg->set_coverage({{mask({1, 1, 1, 1}), empty, mask({1, 1}), empty},
                     {mask({1, 1, 0, 0}), empty, mask({1, 0}), empty}});
  agg->begin_round({1, {0, 1, 2}, 3, 0});
  auto update = [](int party, int level, double weight, std::vector<float> g, std::vector<float> d) {
    Update u;
    u.party = party;
    u.level = level;
    u.weight = weight;
    u.samples = static_cast<std::int64_t>(weight);
    u.segments = {torch::tensor(g), torch::zeros({0}), torch::tensor(d), torch::zeros({0})};
    return u;
  };
  agg->add(update(0, 0, 2, {1, 1, 1, 1}, {4, 4}));
  agg->add(update(1, 1, 1, {4, 7, 0, 0}, {1, 0}));
  agg->add(update(2, 1, 3, {0, 3, 0, 0}, {9, 0}));
  const auto a = agg->finish(*comm);
  CHECK(a.total_weight == 6);
  // Held by all three (weight 6): (2·1 + 4 + 0)/6, (2 + 7 + 9)/6; by party 0 alone: 1.
  CHECK(torch::allclose(a.mean(kGParams), torch::tensor({1.0f, 3.0f, 1.0f, 1.0f})));
  CHECK(torch::allclose(a.mean(kDParams), torch::tensor({(8.0f + 1 + 27) / 6, 4.0f})));
  agg->begin_round({2, {0}, 1, 0});
  CHECK_THROWS_WITH(agg->add(update(0, 2, 1, {1, 1, 1, 1}, {1, 1})),
                    Catch::Contains("width level 2 outside the 2 levels"));
}

TEST_CASE("a coordinate that no participant holds stays unchanged", "[widths]") {
  auto comm = comm::make_serial_communicator();
  FederatedConfig fc;
  fc.seed = 6;
  fc.widths.party_ratio = {0.5, 0.25, 0.5};  // nobody at full width
  fc.widths.bn = WidthBn::Shared;
  FederatedTrainer t(*comm, width_toy(), width_local(), fc,
                     testing::toy_parties({16, 16, 16}, 5, 40), 3);
  const auto g0 = t.global().g_flat().snapshot();
  const auto d0 = t.global().d_flat().snapshot();
  t.run_round(1);
  const auto& half = t.widths()->slice(0);
  auto held = [](const torch::Tensor& index, std::int64_t n) {
    auto m = torch::zeros({n}, torch::kBool);
    m.index_fill_(0, index, true);
    return m;
  };
  const auto g_held = held(half.g, g0.numel()), d_held = held(half.d, d0.numel());
  const auto& g1 = t.global().g_flat().flat();
  const auto& d1 = t.global().d_flat().flat();
  CHECK(torch::equal(g1.masked_select(~g_held), g0.masked_select(~g_held)));
  CHECK(torch::equal(d1.masked_select(~d_held), d0.masked_select(~d_held)));
  // What the half-width parties hold did move.
  CHECK_FALSE(torch::equal(g1.masked_select(g_held), g0.masked_select(g_held)));

  // --width-average all: the quarter party counts as no change where it holds nothing, so the
  // values only the half-width parties hold move less (by their share), and nobody's stay.
  fc.widths.average = WidthAverage::All;
  FederatedTrainer all(*comm, width_toy(), width_local(), fc,
                       testing::toy_parties({16, 16, 16}, 5, 40), 3);
  CHECK(torch::equal(all.global().g_flat().flat(), g0));  // the same start
  all.run_round(1);
  const auto& ga = all.global().g_flat().flat();
  CHECK(torch::equal(ga.masked_select(~g_held), g0.masked_select(~g_held)));
  const auto quarter = held(t.widths()->slice(1).g, g0.numel());
  const auto only_half = g_held & ~quarter;
  // Held by parties 0 and 2 (32 of the 48 samples): 2/3 of the holders' mean step.
  CHECK(torch::allclose((ga - g0).masked_select(only_half),
                        (g1 - g0).masked_select(only_half) * (2.0 / 3.0), 1e-4, 1e-6));
}

TEST_CASE("every party at ratio 1 is plain FedAvg, bit for bit", "[widths]") {
  auto comm = comm::make_serial_communicator();
  auto run = [&](bool widths) {
    FederatedConfig fc;
    fc.seed = 8;
    if (widths) {
      fc.widths.party_ratio = {1, 1, 1};
      fc.widths.bn = WidthBn::Shared;  // statistics averaged like parameters, as FedAvg does
    }
    FederatedTrainer t(*comm, width_toy(), width_local(), fc,
                       testing::toy_parties({16, 24, 8}, 5, 40), 3);
    for (int round = 1; round <= 2; ++round) t.run_round(round);
    return std::make_pair(t.global().g_flat().snapshot(), t.global().d_flat().snapshot());
  };
  const auto plain = run(false), widths = run(true);
  CHECK(torch::equal(plain.first, widths.first));
  CHECK(torch::equal(plain.second, widths.second));
}

TEST_CASE("static BN recomputes G's statistics from its own activations", "[widths]") {
  torch::manual_seed(2);
  models::Gan gan(width_toy());
  const auto before = gan.g_flat().buffers_view().clone();
  models::recompute_generator_bn(gan, 11, 256);
  const auto once = gan.g_flat().buffers_view().clone();
  CHECK_FALSE(torch::equal(before, once));
  models::recompute_generator_bn(gan, 11, 256);  // the same latents: the same statistics
  CHECK(torch::equal(once, gan.g_flat().buffers_view()));
  CHECK(gan.g_flat().aliases(gan.generator()));  // still on the flat buffer
}

TEST_CASE("width settings round-trip through their text form", "[widths]") {
  WidthConfig w;
  w.party_ratio = {1, 0.5, 0.25, 0.25};
  w.bn = WidthBn::Shared;
  w.scaler = false;
  CHECK(w.to_string() == "1,0.5,0.25,0.25 bn=shared scaler=off slicing=leading average=holders");
  const auto back = WidthConfig::parse(w.to_string(), "attr");
  CHECK(back.party_ratio == w.party_ratio);
  CHECK(back.bn == WidthBn::Shared);
  CHECK_FALSE(back.scaler);
  CHECK_THROWS_WITH(WidthConfig::parse("1,x bn=static scaler=on slicing=leading", "f.h5: attribute widths"),
                    Catch::Contains("f.h5: attribute widths") && Catch::Contains("'x'"));
}

TEST_CASE("rolling slices move a window of channels, and every channel is trained in turn",
          "[widths]") {
  torch::manual_seed(4);
  models::Gan global(width_toy());
  {
    torch::NoGradGuard no_grad;
    global.g_flat().flat().copy_(torch::arange(global.g_flat().numel(), torch::kFloat32));
    global.d_flat().flat().copy_(-torch::arange(global.d_flat().numel(), torch::kFloat32));
  }
  models::Gan quarter(models::width_config(global.config(), 0.25, "test"));
  // Step 3 of base width 8: a layer of C channels rotates by 3C/8 (G's last hidden block, C = 8:
  // channels 3, 4 of blocks.1.conv's output; blocks.0 (C = 16) gives 6..9).
  const auto slice = models::width_slice(global, quarter, 3);
  {
    torch::NoGradGuard no_grad;
    quarter.g_flat().flat().copy_(global.g_flat().flat().index_select(0, slice.g));
    quarter.d_flat().flat().copy_(global.d_flat().flat().index_select(0, slice.d));
  }
  auto gp = global.generator().named_parameters(true);
  auto qp = quarter.generator().named_parameters(true);
  const auto w1 = gp["blocks.1.conv.weight"];  // [16, 8, 4, 4]
  CHECK(torch::equal(qp["blocks.1.conv.weight"],
                     w1.index_select(0, torch::tensor({6, 7, 8, 9})).index_select(1, torch::tensor({3, 4}))));
  CHECK(torch::equal(qp["blocks.1.bn.weight"], gp["blocks.1.bn.weight"].index_select(0, torch::tensor({3, 4}))));
  // D's head reads C·7·7 features channel by channel: the window's channels' features.
  auto dp = global.discriminator().named_parameters(true);
  auto dq = quarter.discriminator().named_parameters(true);
  const auto head = dp["head.weight"].view({1, 16, 49});
  CHECK(torch::equal(dq["head.weight"].view({1, 4, 49}),
                     head.index_select(1, torch::tensor({6, 7, 8, 9}))));
  // Over 8 rounds the quarter window visits every channel: every bias and BatchNorm value of G
  // and D (a weight between two channels only when both windows hold them in one round).
  auto comm = comm::make_serial_communicator();
  FederatedConfig fc;
  fc.widths.party_ratio = {1, 0.25};
  fc.widths.slicing = WidthSlicing::Rolling;
  FederatedTrainer t(*comm, width_toy(), width_local(), fc, testing::toy_parties({16, 16}, 5, 40), 2);
  auto levels = std::const_pointer_cast<WidthLevels>(t.widths());
  torch::Tensor g_seen, d_seen;
  for (int round = 1; round <= 8; ++round) {
    CHECK(levels->begin_round(round) == (round > 1));
    const auto& c = levels->coverage(1);
    g_seen = round == 1 ? c[kGParams].clone() : g_seen.maximum(c[kGParams]);
    d_seen = round == 1 ? c[kDParams].clone() : d_seen.maximum(c[kDParams]);
  }
  // (No freezing: the plans' parameter indices are the flat buffers' parameters in order.)
  auto every_channel = [](const models::FlatParameters& flat, const torch::Tensor& seen) {
    std::size_t vectors = 0;
    for (const auto& e : flat.entries()) {
      if (e.is_buffer || e.shape.size() != 1) continue;
      INFO(e.name);
      CHECK(seen.narrow(0, e.offset, e.numel).min().item<double>() == 1);
      ++vectors;
    }
    CHECK(vectors >= 3);
  };
  every_channel(t.global().g_flat(), g_seen);
  every_channel(t.global().d_flat(), d_seen);
  // The union is far more than one round's window (the leading slice would stay at one).
  CHECK(g_seen.sum().item<double>() > 2 * levels->coverage(1)[kGParams].sum().item<double>());
}
