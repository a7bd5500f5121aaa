// Device and aggregation-backend choice, the device-agnostic paths on the CPU, and the
// communicator's tensor collectives (which stage GPU tensors through host memory).
#include <catch2/catch.hpp>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/core/device.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/data/shard_loader.hpp"
#include "fedgan/train/local_trainer.hpp"

#include <torch/torch.h>

using namespace fedgan;

TEST_CASE("device and comm choices parse and refuse clearly", "[device]") {
  CHECK(parse_device_kind("auto") == DeviceKind::Auto);
  CHECK(parse_device_kind("cpu") == DeviceKind::Cpu);
  CHECK(parse_device_kind("cuda") == DeviceKind::Cuda);
  CHECK_THROWS_WITH(parse_device_kind("tpu"), Catch::Contains("expected auto, cpu or cuda"));
  CHECK(parse_comm_kind("nccl") == CommKind::Nccl);
  CHECK_THROWS_WITH(parse_comm_kind("gloo"), Catch::Contains("expected auto, mpi or nccl"));
  CHECK(choose_device(DeviceKind::Cpu, 3).is_cpu());
  if (compat::cuda_device_count() == 0) {
    CHECK(choose_device(DeviceKind::Auto, 0).is_cpu());
    CHECK_THROWS_WITH(choose_device(DeviceKind::Cuda, 0), Catch::Contains("no CUDA device"));
  }
}

TEST_CASE("auto picks NCCL only when each rank has its own GPU and NCCL is built", "[device]") {
  const torch::Device gpu(torch::kCUDA, 0), cpu(torch::kCPU);
  CHECK(resolve_comm_kind(CommKind::Auto, gpu, true, 4, 4) == CommKind::Nccl);
  CHECK(resolve_comm_kind(CommKind::Auto, gpu, true, 2, 1) == CommKind::Mpi);   // shared GPU
  CHECK(resolve_comm_kind(CommKind::Auto, gpu, false, 1, 1) == CommKind::Mpi);  // no NCCL
  CHECK(resolve_comm_kind(CommKind::Auto, cpu, true, 1, 0) == CommKind::Mpi);
  CHECK(resolve_comm_kind(CommKind::Mpi, gpu, true, 1, 1) == CommKind::Mpi);
  CHECK_THROWS_WITH(resolve_comm_kind(CommKind::Nccl, gpu, true, 2, 1),
                    Catch::Contains("NCCL refuses two ranks on one GPU"));
  CHECK_THROWS_WITH(resolve_comm_kind(CommKind::Nccl, cpu, true, 1, 0),
                    Catch::Contains("needs --device cuda"));
  CHECK_THROWS_WITH(resolve_comm_kind(CommKind::Nccl, gpu, false, 1, 1),
                    Catch::Contains("built without NCCL"));
}

TEST_CASE("make_generator on the CPU is the CPU generator", "[device]") {
  auto a = compat::make_generator(42, torch::kCPU);
  auto b = compat::make_cpu_generator(42);
  CHECK(torch::equal(torch::randn({16}, a), torch::randn({16}, b)));
}

TEST_CASE("the reused fake batch is the pytorch/examples step: same D update, fewer draws",
          "[device][train]") {
  models::ModelConfig model;
  model.g_width = 8;
  model.d_width = 8;
  model.latent_dim = 16;
  auto run = [&](bool reuse) {
    torch::manual_seed(1);
    models::Gan gan(model);
    train::LocalTrainConfig c;
    c.batch_size = 8;
    c.reuse_fake = reuse;
    train::LocalTrainer trainer(c);
    auto opt = train::make_party_optimizers(gan, c);
    auto gen = compat::make_cpu_generator(3);
    data::Batch batch{torch::rand({8, 1, 28, 28}, compat::make_cpu_generator(9)) * 2 - 1, {}};
    auto [d, g] = trainer.step(gan, opt, batch, gen);
    return std::make_tuple(d, g, gan.d_flat().parameters_view().clone(),
                           gan.g_flat().parameters_view().clone(),
                           torch::randn({1}, gen).item<float>());
  };
  auto [d1, g1, dflat1, gflat1, next1] = run(false);
  auto [d2, g2, dflat2, gflat2, next2] = run(true);
  // The D step sees the same z and the same fake images either way: identical D weights
  // (D's BatchNorm statistics differ: the G step shows D another fake batch when fresh).
  CHECK(d1 == d2);
  CHECK(torch::equal(dflat1, dflat2));
  // The G step differs (other z for fresh) and reuse draws one z fewer per step.
  CHECK_FALSE(torch::equal(gflat1, gflat2));
  CHECK(next1 != next2);
  CHECK(std::isfinite(g1));
  CHECK(std::isfinite(g2));
}

TEST_CASE("a shard on a device serves the CPU's batches (skipped without a GPU)", "[device]") {
  auto images = torch::randint(0, 256, {10, 1, 4, 4}, torch::kUInt8);
  auto labels = torch::arange(10, torch::kInt64);
  data::ShardLoader cpu(images, labels, 10, 0, 7);
  if (compat::cuda_device_count() == 0) {
    cpu.to_device(torch::kCPU);  // a no-op that keeps the CPU path
    CHECK(cpu.device().is_cpu());
    return;
  }
  data::ShardLoader gpu(images, labels, 10, 0, 7);
  gpu.to_device(torch::Device(torch::kCUDA, 0));
  auto a = cpu.epoch_batches(2, 4, false);
  auto b = gpu.epoch_batches(2, 4, false);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(b[i].images.is_cuda());
    CHECK(torch::equal(a[i].images, b[i].images.cpu()));
    CHECK(torch::equal(a[i].labels, b[i].labels.cpu()));
  }
}

TEST_CASE("the NCCL backend is reported as built or not", "[device]") {
  if (comm::nccl_built()) {
    CHECK_FALSE(comm::nccl_version().empty());
  } else {
    CHECK(comm::nccl_version().empty());
    auto serial = comm::make_serial_communicator();
    CHECK_THROWS_WITH(comm::make_nccl_communicator(*serial, 0), Catch::Contains("without NCCL"));
  }
}
