// Local GAN step benchmark: one D update + one G update of fedgan's DCGAN (FlatAdam, flat
// gradients) at a given size, batch, thread count and device. Prints the median time per step
// and images/s; benchmarks/local_step_pytorch.py runs the same step in PyTorch, in our form
// (a fresh fake batch for G) and in pytorch/examples' dcgan form (the D step's batch reused).
// On a GPU each timed repetition is synchronised at its ends, not per step, so the figure is
// the throughput of a queue of steps, as in training.
#include "fedgan/core/device.hpp"
#include "fedgan/io/atomic_file.hpp"
#include "fedgan/models/torchscript.hpp"
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
  int channels = 1, image_size = 28;
  std::string device_name = "cpu", g_fake = "fresh", precision = "fp32", g_script, d_script;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    auto text = [&] { return std::string(i + 1 < argc ? argv[++i] : ""); };
    if (!std::strcmp(argv[i], "--g-width")) g_width = next();
    else if (!std::strcmp(argv[i], "--d-width")) d_width = next();
    else if (!std::strcmp(argv[i], "--batch-size")) batch = next();
    else if (!std::strcmp(argv[i], "--steps")) steps = next();
    else if (!std::strcmp(argv[i], "--threads")) threads = next();
    else if (!std::strcmp(argv[i], "--device")) device_name = text();
    else if (!std::strcmp(argv[i], "--g-fake")) g_fake = text();
    else if (!std::strcmp(argv[i], "--precision")) precision = text();
    else if (!std::strcmp(argv[i], "--channels")) channels = next();
    else if (!std::strcmp(argv[i], "--image-size")) image_size = next();
    else if (!std::strcmp(argv[i], "--latent-dim")) latent = next();
    else if (!std::strcmp(argv[i], "--generator")) g_script = text();
    else if (!std::strcmp(argv[i], "--discriminator")) d_script = text();
    else if (!std::strcmp(argv[i], "--json")) json = true;
    else {
      std::printf("usage: bench_local_step [--g-width W] [--d-width W] [--batch-size B] "
                  "[--steps N] [--threads T] [--device cpu|cuda] [--g-fake fresh|reuse] "
                  "[--precision fp32|bf16] [--channels C] [--image-size S] [--latent-dim Z] "
                  "[--generator G.pt --discriminator D.pt] [--json]\n");
      return std::strcmp(argv[i], "--help") ? 2 : 0;
    }
  }
  if (g_fake != "fresh" && g_fake != "reuse") {
    std::fprintf(stderr, "bench_local_step: --g-fake must be fresh or reuse\n");
    return 2;
  }
  torch::Device device = torch::kCPU;
  try {
    device = fedgan::choose_device(fedgan::parse_device_kind(device_name), 0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_local_step: %s\n", e.what());
    return 2;
  }
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  fedgan::models::ModelConfig model;
  model.g_width = g_width;
  model.d_width = d_width;
  model.latent_dim = latent;
  model.channels = channels;
  model.image_size = image_size;
  const bool scripted = !g_script.empty();
  if (scripted) {
    // A TorchScript pair (family torchscript), as `fedgan train --model torchscript` runs it.
    try {
      model.family = fedgan::models::kTorchScriptFamily;
      fedgan::models::ScriptArchives archives{fedgan::io::read_file(g_script, "--generator"),
                                              fedgan::io::read_file(d_script, "--discriminator")};
      auto scripts = fedgan::models::load_scripts(archives, g_script, d_script);
      const auto info = fedgan::models::inspect_scripts(scripts);
      if (info.latent_dim) model.latent_dim = latent = *info.latent_dim;
      model.set_scripts(std::move(archives));
      fedgan::models::check_script_interface(scripts, model);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_local_step: %s\n", e.what());
      return 2;
    }
  }
  fedgan::models::Gan gan(model, device);
  fedgan::train::LocalTrainConfig config;
  config.batch_size = batch;
  config.reuse_fake = g_fake == "reuse";
  config.autocast_bf16 = precision == "bf16" && device.is_cuda();
  fedgan::train::LocalTrainer trainer(config);
  auto opt = fedgan::train::make_party_optimizers(gan, config);
  auto gen = fedgan::compat::make_generator(1, device);
  fedgan::data::Batch b{
      (torch::rand({batch, channels, image_size, image_size}) * 2 - 1).to(device), {}};
  for (int i = 0; i < 10; ++i) trainer.step_async(gan, opt, b, gen);  // warm-up
  fedgan::compat::synchronize(device);
  // CPU: every step timed alone (as before); GPU: 5 repetitions of steps/5 queued steps.
  const int reps = device.is_cuda() ? 5 : steps;
  const int per_rep = device.is_cuda() ? std::max(1, steps / 5) : 1;
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < per_rep; ++k) {
      auto losses = trainer.step_async(gan, opt, b, gen);
      if (device.is_cpu()) (void)losses.first.item<double>();  // as training reads them
    }
    fedgan::compat::synchronize(device);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                    per_rep);
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const std::string impl = std::string(scripted ? "fedgan-script-" : "fedgan-") + g_fake;
  if (json) {
    std::printf("{\"impl\":\"%s\",\"torch\":\"%s\",\"device\":\"%s\",\"precision\":\"%s\","
                "\"threads\":%d,\"batch\":%d,\"g_width\":%d,\"d_width\":%d,\"size\":%d,\"channels\":%d,"
                "\"median_step_s\":%.6f,\"images_per_s\":%.1f}\n",
                impl.c_str(), fedgan::compat::torch_version().c_str(), device.str().c_str(),
                precision.c_str(), threads, batch, g_width, d_width, image_size, channels, median,
                batch / median);
  } else {
    std::printf("%-20s torch %-8s %-6s %s threads %d batch %d %dx%dx%d G/D width %d/%d: "
                "median step %.3f ms, %.0f images/s\n",
                impl.c_str(), fedgan::compat::torch_version().c_str(), device.str().c_str(),
                precision.c_str(), threads, batch, channels, image_size, image_size, g_width,
                d_width, median * 1e3, batch / median);
  }
  return 0;
}
