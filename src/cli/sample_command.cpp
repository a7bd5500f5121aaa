// `fedgan sample`: N images from a checkpoint's generator, as a dataset file (.h5, uint8, the
// dataset schema, with /latents: each image's z) or a PNG grid (.png).
#include <spdlog/spdlog.h>

#include <filesystem>

#include "fedgan/cli/command.hpp"
#include "fedgan/cli/validators.hpp"
#include "fedgan/cli/width_ratio.hpp"
#include "fedgan/comm/collective.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/io/atomic_file.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/io/hdf5.hpp"
#include "fedgan/io/image_grid.hpp"
#include "fedgan/models/gan.hpp"

namespace fedgan::cli {
namespace {

struct SampleConfig {
  std::string checkpoint;
  std::string out;
  int n = 64;
  std::uint64_t seed = 0;
  bool force = false;
  double width_ratio = 1;  // < 1: the sub-model at this width (HeteroFL)
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A grid of more images than this is unreadable; a .h5 file takes any number.
constexpr int kMaxGridImages = 4096;

void sample(const SampleConfig& c) {
  const bool png = ends_with(c.out, ".png");
  require(ends_with(c.out, ".h5") || png,
          "--out " + c.out + ": expected a .h5 (dataset) or .png (grid) file name");
  require(!png || c.n <= kMaxGridImages,
          "--n " + std::to_string(c.n) + ": a .png grid takes at most " +
              std::to_string(kMaxGridImages) + " images; write a .h5 file for more");
  require(c.force || !std::filesystem::exists(c.out),
          c.out + ": exists; use --force to overwrite it");
  // Validated against its architecture (shapes, finite values) before the model is built.
  const auto ck = io::read_checkpoint(c.checkpoint);
  const models::ModelConfig& model = ck.model;
  require(!png || model.channels == 1 || model.channels == 3,
          c.checkpoint + ": the generator makes " + std::to_string(model.channels) +
              "-channel images; a .png grid needs 1 or 3 channels (write a .h5 file)");
  auto global = std::make_unique<models::Gan>(model);
  io::load_strict(global->g_flat(), ck.generator, "generator", c.checkpoint);
  if (c.width_ratio != 1) global = width_submodel(*global, ck, c.width_ratio, c.checkpoint);
  models::Gan& gan = *global;
  gan.generator().eval();
  auto gen = compat::make_cpu_generator(c.seed);
  // Kept as uint8 batch by batch: a large --n costs 1 byte per pixel, not 4.
  std::vector<torch::Tensor> images, labels, latents;
  torch::NoGradGuard no_grad;
  for (int done = 0; done < c.n;) {
    const int b = std::min(256, c.n - done);
    auto z = torch::randn({b, model.latent_dim}, gen);
    if (!png) latents.push_back(z);
    torch::Tensor y;
    if (model.num_classes > 0) {
      y = (torch::arange(b, torch::kInt64) + done) % model.num_classes;
      labels.push_back(y);
    }
    const auto x = gan.generator().forward(z, y);
    const auto bad = x.numel() - torch::isfinite(x).sum().item<std::int64_t>();
    require(bad == 0, c.checkpoint + ": the generator produced " + std::to_string(bad) +
                          " NaN/inf pixel values in images " + std::to_string(done) + ".." +
                          std::to_string(done + b - 1) + "; nothing was written");
    images.push_back(png ? x : io::to_uint8(x));
    done += b;
  }
  auto all = torch::cat(images);
  if (png) {
    io::write_png_grid(c.out, all);
  } else {
    io::write_atomically(c.out, [&](const std::string& temp) {
      h5::File f(temp, h5::File::Mode::Create);
      f.write("/images", all);
      f.set_attr("/", "name", std::string("samples"));
      f.set_attr("/", "source_checkpoint", c.checkpoint);
      f.set_attr("/", "num_classes", static_cast<std::int64_t>(std::max(1, model.num_classes)));
      if (!labels.empty()) f.write("/labels", torch::cat(labels));
      f.write("/latents", torch::cat(latents));  // the z of each image (to reproduce it)
      f.close();
    });
  }
  spdlog::info("sample: wrote {} images of round {} to {}", c.n, ck.round, c.out);
}

}  // namespace

void add_sample_command(CLI::App& root, Commands& commands) {
  auto c = std::make_shared<SampleConfig>();
  auto* sub = root.add_subcommand("sample", "generate images from a checkpoint");
  sub->add_option("--checkpoint", c->checkpoint, "checkpoint file (.h5)")->required();
  sub->add_option("--out", c->out, "output: .h5 dataset file or .png grid")->required();
  sub->add_option("--n", c->n, "number of images")->capture_default_str()->check(positive());
  sub->add_option("--seed", c->seed, "seed of the latent vectors")->capture_default_str();
  sub->add_flag("--force", c->force, "overwrite --out");
  add_width_ratio_option(*sub, c->width_ratio);
  commands.push_back({sub, [c](comm::Communicator& comm) {
                        comm::run_on_root(comm, [&] { sample(*c); });
                        return 0;
                      }});
}

}  // namespace fedgan::cli
