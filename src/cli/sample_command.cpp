// `fedgan sample`: N images from a checkpoint's generator, as a dataset file (.h5, uint8, the
// dataset schema) or a PNG grid (.png).
#include "fedgan/cli/command.hpp"
#include "fedgan/comm/collective.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/io/atomic_file.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/io/hdf5.hpp"
#include "fedgan/io/image_grid.hpp"
#include "fedgan/models/gan.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>

namespace fedgan::cli {
namespace {

struct SampleConfig {
  std::string checkpoint;
  std::string out;
  int n = 64;
  std::uint64_t seed = 0;
  bool force = false;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void sample(const SampleConfig& c) {
  require(ends_with(c.out, ".h5") || ends_with(c.out, ".png"),
          "--out " + c.out + ": expected a .h5 (dataset) or .png (grid) file name");
  require(c.force || !std::filesystem::exists(c.out),
          c.out + ": exists; use --force to overwrite it");
  const auto ck = io::read_checkpoint(c.checkpoint);
  const ModelConfig model = ModelConfig::parse(ck.architecture);
  Gan gan(model);
  io::load_strict(gan.g_flat(), ck.generator, "generator", c.checkpoint);
  gan.generator().eval();
  auto gen = compat::make_cpu_generator(c.seed);
  std::vector<torch::Tensor> images, labels;
  torch::NoGradGuard no_grad;
  for (int done = 0; done < c.n;) {
    const int b = std::min(256, c.n - done);
    auto z = torch::randn({b, model.latent_dim}, gen);
    torch::Tensor y;
    if (model.num_classes > 0) {
      y = (torch::arange(b, torch::kInt64) + done) % model.num_classes;
      labels.push_back(y);
    }
    images.push_back(gan.generator().forward(z, y));
    done += b;
  }
  auto all = torch::cat(images);
  if (ends_with(c.out, ".png")) {
    io::write_png_grid(c.out, all);
  } else {
    io::write_atomically(c.out, [&](const std::string& temp) {
      h5::File f(temp, h5::File::Mode::Create);
      f.write("/images", io::to_uint8(all));
      f.set_attr("/", "name", std::string("samples"));
      f.set_attr("/", "source_checkpoint", c.checkpoint);
      f.set_attr("/", "num_classes", static_cast<std::int64_t>(std::max(1, model.num_classes)));
      if (!labels.empty()) f.write("/labels", torch::cat(labels));
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
  sub->add_option("--n", c->n, "number of images")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--seed", c->seed, "seed of the latent vectors")->capture_default_str();
  sub->add_flag("--force", c->force, "overwrite --out");
  commands.push_back({sub, [c](Communicator& comm) {
                        collective_try(comm, [&] {
                          if (comm.is_root()) sample(*c);
                        });
                        return 0;
                      }});
}

}  // namespace fedgan::cli
