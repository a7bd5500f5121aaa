// Local GAN step benchmark: one D update + one G update of fedgan's DCGAN (FlatAdam, flat
// gradients) at a given size, batch and thread count. Prints the median step time and
// images/s; benchmarks/local_step_pytorch.py runs the identical step in PyTorch.
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/train/local_trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  int g_width = 32, d_width = 32, batch = 64, steps = 30, threads = 1, latent = 64;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (!std::strcmp(argv[i], "--g-width")) g_width = next();
    else if (!std::strcmp(argv[i], "--d-width")) d_width = next();
    else if (!std::strcmp(argv[i], "--batch-size")) batch = next();
    else if (!std::strcmp(argv[i], "--steps")) steps = next();
    else if (!std::strcmp(argv[i], "--threads")) threads = next();
    else if (!std::strcmp(argv[i], "--json")) json = true;
    else {
      std::printf("usage: bench_local_step [--g-width W] [--d-width W] [--batch-size B] "
                  "[--steps N] [--threads T] [--json]\n");
      return std::strcmp(argv[i], "--help") ? 2 : 0;
    }
  }
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  fedgan::ModelConfig model;
  model.g_width = g_width;
  model.d_width = d_width;
  model.latent_dim = latent;
  fedgan::Gan gan(model);
  fedgan::LocalTrainConfig config;
  config.batch_size = batch;
  fedgan::LocalTrainer trainer(config);
  auto opt = fedgan::make_party_optimizers(gan, config);
  auto gen = fedgan::compat::make_cpu_generator(1);
  fedgan::TrainBatch b{torch::rand({batch, 1, 28, 28}) * 2 - 1, {}};
  for (int i = 0; i < 5; ++i) trainer.step(gan, opt, b, gen);  // warm-up
  std::vector<double> times;
  for (int i = 0; i < steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    trainer.step(gan, opt, b, gen);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  if (json) {
    std::printf("{\"impl\":\"fedgan-libtorch\",\"torch\":\"%s\",\"threads\":%d,\"batch\":%d,"
                "\"g_width\":%d,\"d_width\":%d,\"median_step_s\":%.6f,\"images_per_s\":%.1f}\n",
                fedgan::compat::torch_version().c_str(), threads, batch, g_width, d_width, median,
                batch / median);
  } else {
    std::printf("%-16s torch %-8s threads %d batch %d G/D width %d/%d: median step %.2f ms, "
                "%.0f images/s\n",
                "fedgan-libtorch", fedgan::compat::torch_version().c_str(), threads, batch,
                g_width, d_width, median * 1e3, batch / median);
  }
  return 0;
}
