// Transfer learning: partial loading with a report, freezing plans, distillation loss.
#include <catch2/catch.hpp>

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/federated/round/federated_trainer.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/transfer/freeze_policy.hpp"
#include "fedgan/transfer/kd_regularizer.hpp"
#include "fedgan/transfer/warm_start.hpp"

using namespace fedgan;

namespace {
models::ModelConfig model(int g_width = 8, int classes = 0) {
  models::ModelConfig c;
  c.latent_dim = 8;
  c.g_width = g_width;
  c.d_width = 4;
  c.num_classes = classes;
  return c;
}
}  // namespace

TEST_CASE("partial load reports a width mismatch and loads what matches", "[transfer]") {
  torch::manual_seed(1);
  models::Gan source(model(8, 3));
  torch::manual_seed(2);
  models::Gan target(model(12, 5));  // other width, other class count
  auto report = transfer::load_partial(target.g_flat(), io::named_tensors(source.g_flat()));
  CHECK_FALSE(report.clean());
  CHECK(report.missing.empty());
  CHECK(report.unexpected.empty());
  // Every tensor of G depends on the width or the class count except out.bias.
  CHECK(report.loaded == std::vector<std::string>{"out.bias"});
  CHECK(report.shape_mismatch.size() == target.g_flat().entries().size() - 1);
  CHECK_THAT(report.text("generator"), Catch::Contains("shape mismatch") &&
                                           Catch::Contains("embed.weight"));
  // Same architecture: everything transfers, values equal.
  models::Gan same(model(8, 3));
  auto full = transfer::load_partial(same.g_flat(), io::named_tensors(source.g_flat()));
  CHECK(full.clean());
  CHECK(full.loaded_numel == source.g_flat().numel());
  CHECK(torch::equal(same.g_flat().flat(), source.g_flat().flat()));
  // A file with an extra tensor is reported as unexpected.
  auto extra = io::named_tensors(source.g_flat());
  extra["unused.weight"] = torch::zeros({2});
  CHECK(transfer::load_partial(same.g_flat(), extra).unexpected ==
        std::vector<std::string>{"unused.weight"});
}

TEST_CASE("freeze plans: blocks, train-only globs, multipliers, errors", "[transfer]") {
  models::Gan gan(model());
  const auto blocks = gan.generator().block_prefixes();
  REQUIRE(blocks == std::vector<std::string>{"blocks.0", "blocks.1", "out"});
  transfer::FreezeConfig c;
  c.freeze_blocks = 1;
  auto plan = transfer::make_plan(gan.g_flat(), blocks, c, "generator");
  CHECK(plan.frozen == std::vector<std::string>{"blocks.0.conv.weight", "blocks.0.bn.weight",
                                                "blocks.0.bn.bias"});
  CHECK(plan.param_index.numel() < gan.g_flat().parameter_numel());
  CHECK(plan.lr_scale.narrow(0, 0, 10).eq(0).all().item<bool>());
  c.freeze_blocks = 4;
  CHECK_THROWS_WITH(transfer::make_plan(gan.g_flat(), blocks, c, "generator"),
                    Catch::Contains("has 3 blocks"));
  c.freeze_blocks = 0;
  c.train_only = {"out.*"};
  plan = transfer::make_plan(gan.g_flat(), blocks, c, "generator");
  CHECK(plan.param_index.numel() == gan.g_flat().entries()[6].numel + 1);  // out.weight + bias
  CHECK(plan.buffer_index.numel() == 0);  // BN statistics of frozen blocks stay out too
  c.train_only = {};
  c.lr_mult = transfer::parse_lr_mult("out=0.5", "--lr-mult-g");
  plan = transfer::make_plan(gan.g_flat(), blocks, c, "generator");
  CHECK_FALSE(plan.identity);
  CHECK(plan.lr_scale.max().item<float>() == 1.0f);
  CHECK(plan.lr_scale.min().item<float>() == 0.5f);
  CHECK_THROWS_AS(transfer::parse_lr_mult("out", "--lr-mult-g"), Error);
  CHECK_THROWS_WITH(transfer::parse_lr_mult("out=nan", "--lr-mult-g"), Catch::Contains("finite"));
  // A prefix that names nothing is refused instead of silently changing nothing.
  c.lr_mult = transfer::parse_lr_mult("blocks.9=0.1", "--lr-mult-g");
  CHECK_THROWS_WITH(transfer::make_plan(gan.g_flat(), blocks, c, "generator"),
                    Catch::Contains("--lr-mult-g: prefix 'blocks.9' matches no parameter"));
  c.lr_mult = transfer::parse_lr_mult("blocks.0.conv.weight=0.1", "--lr-mult-g");
  CHECK_NOTHROW(transfer::make_plan(gan.g_flat(), blocks, c, "generator"));
}

TEST_CASE("frozen parameters do not change over rounds and leave the allreduce", "[transfer]") {
  auto comm = comm::make_serial_communicator();
  federated::FederatedConfig fc;
  fc.freeze_g.freeze_blocks = 1;
  fc.freeze_d.freeze_blocks = 1;
  fc.server.kind = federated::ServerOptimizerKind::FedAdam;
  train::LocalTrainConfig lc;
  lc.local_steps = 3;
  lc.batch_size = 8;
  std::vector<federated::LocalParty> parties;
  for (int k = 0; k < 2; ++k)
    parties.push_back({k, std::make_shared<data::TensorPartyData>(
                              torch::rand({16, 1, 28, 28}, compat::make_cpu_generator(k)) * 2 - 1,
                              torch::Tensor(), k)});
  federated::FederatedTrainer t(*comm, model(), lc, fc, parties, 2);
  const auto g0 = t.global().g_flat().snapshot();
  const auto d0 = t.global().d_flat().snapshot();
  for (int r = 1; r <= 2; ++r) t.run_round(r);
  CHECK(t.aggregated_numel() < t.global().g_flat().numel() + t.global().d_flat().numel());
  auto check = [](models::FlatParameters& flat, const torch::Tensor& before,
                  const std::string& block) {
    bool frozen_same = true, others_moved = false;
    for (const auto& e : flat.entries()) {
      const bool same = torch::equal(flat.flat().narrow(0, e.offset, e.numel),
                                     before.narrow(0, e.offset, e.numel));
      if (e.name.rfind(block + ".", 0) == 0)
        frozen_same = frozen_same && same;
      else if (!e.is_buffer)
        others_moved = others_moved || !same;
    }
    CHECK(frozen_same);
    CHECK(others_moved);
  };
  check(t.global().g_flat(), g0, "blocks.0");
  check(t.global().d_flat(), d0, "blocks.0");
}

TEST_CASE("distillation loss is zero for the teacher itself, positive otherwise", "[transfer]") {
  torch::manual_seed(3);
  models::Gan teacher(model()), student(model());
  auto z = torch::randn({6, 8});
  torch::NoGradGuard g;
  auto t = teacher.generator().forward(z, {});
  CHECK(transfer::kd_loss(t, t).item<double>() == 0.0);
  student.copy_from(teacher);
  CHECK(transfer::kd_loss(student.generator().forward(z, {}), t).item<double>() == 0.0);
  models::Gan other(model());
  CHECK(transfer::kd_loss(other.generator().forward(z, {}), t).item<double>() > 0.0);
}
