// `fedgan distill`: compress a fine-tuned generator into a smaller student (rank 0 trains;
// the job agrees on errors) and write a checkpoint usable by `sample`, `eval` and `--init`.
#include <spdlog/spdlog.h>

#include <filesystem>

#include "fedgan/cli/command.hpp"
#include "fedgan/cli/validators.hpp"
#include "fedgan/comm/collective.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/transfer/distill.hpp"

namespace fedgan::cli {
namespace {

struct DistillOptions {
  std::string teacher, out;
  int g_width = 16;
  bool force = false;
  transfer::DistillConfig config;
};

void run_distill(const DistillOptions& o) {
  require(o.force || !std::filesystem::exists(o.out), o.out + ": exists; use --force to overwrite it");
  const auto ck = io::read_checkpoint(o.teacher);
  const models::ModelConfig& tc = ck.model;
  require(!tc.is_torchscript(),
          o.teacher + ": holds a TorchScript model, whose generator width fedgan cannot change; "
                      "distil it in PyTorch (or distil a built-in dcgan teacher)");
  models::Gan teacher(tc);
  io::load_strict(teacher.g_flat(), ck.generator, "generator", o.teacher);
  io::load_strict(teacher.d_flat(), ck.discriminator, "discriminator", o.teacher);
  models::ModelConfig sc = tc;
  sc.g_width = o.g_width;
  sc.g_mod_rank = 0;  // a modulated teacher's student is a plain generator (it learns the output)
  torch::manual_seed(o.config.seed);
  models::Gan student(sc);
  student.d_flat().flat().copy_(teacher.d_flat().flat());  // keep the teacher's D beside it
  const auto r = transfer::distill(teacher, student, o.config);
  io::CheckpointData out;
  out.round = ck.round;
  out.architecture = sc.to_string();
  out.config_text = "[distill]\nteacher=\"" + o.teacher + "\"\ng-width=" + std::to_string(o.g_width) +
                    "\nsteps=" + std::to_string(o.config.steps) + "\n";
  out.generator = io::named_tensors(student.g_flat());
  out.discriminator = io::named_tensors(student.d_flat());
  io::write_checkpoint(o.out, out);
  spdlog::info("distill: generator {} -> {} parameters ({:.1f}x smaller, width {} -> {})",
               r.teacher_params, r.student_params,
               static_cast<double>(r.teacher_params) / static_cast<double>(r.student_params),
               tc.g_width, sc.g_width);
  spdlog::info("distill: held-out pixel MSE {:.4e} (before {:.4e}), teacher-D feature MSE {:.4e}",
               r.pixel_loss, r.initial_pixel_loss, r.feature_loss);
  spdlog::info("distill: wrote {}", o.out);
}

}  // namespace

void add_distill_command(CLI::App& root, Commands& commands) {
  auto o = std::make_shared<DistillOptions>();
  auto* sub = root.add_subcommand("distill", "distil a generator into a smaller student");
  sub->add_option("--teacher", o->teacher, "teacher checkpoint (.h5)")->required();
  sub->add_option("--out", o->out, "student checkpoint to write (.h5)")->required();
  sub->add_option("--g-width", o->g_width, "student generator width")
      ->capture_default_str()
      ->check(CLI::Range(2, models::kMaxModelWidth));
  sub->add_option("--steps", o->config.steps, "")->capture_default_str()->check(positive());
  sub->add_option("--batch-size", o->config.batch_size, "")
      ->capture_default_str()
      ->check(positive());
  sub->add_option("--lr", o->config.lr, "")->capture_default_str()->check(positive_float());
  sub->add_option("--feature-weight", o->config.feature_weight,
                  "weight of the teacher-D feature loss")
      ->capture_default_str()
      ->check(non_negative_float());
  sub->add_option("--seed", o->config.seed, "")->capture_default_str();
  sub->add_flag("--force", o->force, "overwrite --out");
  commands.push_back({sub, [o](comm::Communicator& comm) {
                        comm::run_on_root(comm, [&] { run_distill(*o); });
                        return 0;
                      }});
}

}  // namespace fedgan::cli
