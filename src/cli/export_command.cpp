// `fedgan export`: a checkpoint's trained model back to PyTorch. G_state.pt and D_state.pt are
// state dicts (torch.save format, every parameter and buffer under the module's own names), and
// for a TorchScript model G.pt and D.pt are its archives holding the trained values.
#include <spdlog/spdlog.h>

#include <torch/csrc/jit/serialization/pickle.h>

#include <filesystem>

#include "fedgan/cli/command.hpp"
#include "fedgan/comm/collective.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/io/atomic_file.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/models/modulation.hpp"
#include "fedgan/models/torchscript.hpp"

namespace fedgan::cli {
namespace {

struct ExportConfig {
  std::string checkpoint, out;
  bool force = false;
};

// Every parameter and buffer of `module` (int buffers such as num_batches_tracked too, so that
// load_state_dict(strict=True) accepts the dict), as a plain dict. A modulated generator's
// modulations are folded into its kernels (W ⊙ (1 + A Bᵀ)) and left out: a plain dcgan's dict.
c10::Dict<std::string, at::Tensor> state_dict(torch::nn::Module& module, bool fold = false) {
  c10::Dict<std::string, at::Tensor> out;
  std::map<std::string, torch::Tensor> folded;
  if (fold) {
    for (const auto& p : module.named_parameters(/*recurse=*/true))
      folded[p.key()] = p.value().detach().to(torch::kCPU);
    folded = models::fold_modulation(std::move(folded));
  }
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    if (fold && !folded.count(p.key())) continue;
    out.insert(p.key(), (fold ? folded.at(p.key()) : p.value().detach().to(torch::kCPU)).clone());
  }
  for (const auto& b : module.named_buffers(/*recurse=*/true))
    out.insert(b.key(), b.value().detach().to(torch::kCPU).clone());
  return out;
}

void export_model(const ExportConfig& c) {
  const auto ck = io::read_checkpoint(c.checkpoint);
  models::Gan gan(ck.model);
  io::load_strict(gan.g_flat(), ck.generator, "generator", c.checkpoint);
  io::load_strict(gan.d_flat(), ck.discriminator, "discriminator", c.checkpoint);
  std::filesystem::create_directories(c.out);
  const bool scripted = ck.model.is_torchscript();
  std::vector<std::string> names = {"G_state.pt", "D_state.pt", "model.txt"};
  if (scripted) names.insert(names.end(), {"G.pt", "D.pt"});
  for (const auto& name : names)
    require(c.force || !std::filesystem::exists(c.out + "/" + name),
            c.out + "/" + name + ": exists; use --force to overwrite it");
  for (auto [module, prefix] :
       {std::pair<torch::nn::Module*, std::string>{&gan.generator(), "G"},
        {&gan.discriminator(), "D"}}) {
    const bool fold = prefix == "G" && ck.model.g_mod_rank > 0;
    const auto bytes = torch::pickle_save(state_dict(*module, fold));
    io::write_text_atomically(c.out + "/" + prefix + "_state.pt",
                              std::string(bytes.begin(), bytes.end()));
    if (!scripted) continue;
    // The archive's tensors are the model's: saving it saves the trained values.
    auto* script = models::script_module(*module);
    require(script != nullptr, "export: a TorchScript model without its module");
    io::write_atomically(c.out + "/" + prefix + ".pt",
                         [&](const std::string& temp) { script->save(temp); });
  }
  std::string how;
  if (scripted) {
    how = "G = torch.jit.load(\"" + c.out + "/G.pt\")  # or: YourGenerator(...).load_state_dict(" +
          "torch.load(\"" + c.out + "/G_state.pt\"))\n";
  } else {
    how = "import sys; sys.path.insert(0, \"examples/models\"); from dcgan import build\n"
          "G, D = build(channels=" + std::to_string(ck.model.channels) +
          ", image_size=" + std::to_string(ck.model.image_size) +
          ", latent_dim=" + std::to_string(ck.model.latent_dim) +
          ", g_width=" + std::to_string(ck.model.g_width) +
          ", d_width=" + std::to_string(ck.model.d_width) +
          ", num_classes=" + std::to_string(ck.model.num_classes) + ", d_norm=\"" +
          models::to_string(ck.model.d_norm) + "\")\n"
          "G.load_state_dict(torch.load(\"" + c.out + "/G_state.pt\"))\n";
  }
  if (ck.model.g_mod_rank > 0)
    how += "# G's kernel modulation (rank " + std::to_string(ck.model.g_mod_rank) +
           ") is folded into G_state.pt's kernels: W * (1 + A B^T); the plain dcgan loads it\n";
  const std::string text = "checkpoint = " + c.checkpoint + " (round " +
                           std::to_string(ck.round) + ")\narchitecture = " + ck.architecture +
                           "\n\n# In Python:\nimport torch\n" + how;
  io::write_text_atomically(c.out + "/model.txt", text);
  spdlog::info("export: round {} of {} ({}) to {}: {}", ck.round, c.checkpoint, ck.architecture,
               c.out, scripted ? "G.pt, D.pt, G_state.pt, D_state.pt" : "G_state.pt, D_state.pt");
  spdlog::info("export: in Python: {}", how.substr(0, how.find('\n')));
}

}  // namespace

void add_export_command(CLI::App& root, Commands& commands) {
  auto c = std::make_shared<ExportConfig>();
  auto* sub = root.add_subcommand(
      "export", "write a checkpoint's G and D as PyTorch state dicts (and TorchScript archives)");
  sub->add_option("--checkpoint", c->checkpoint, "checkpoint file (.h5)")->required();
  sub->add_option("--out", c->out, "output folder")->required();
  sub->add_flag("--force", c->force, "overwrite files in --out");
  commands.push_back({sub, [c](comm::Communicator& comm) {
                        comm::run_on_root(comm, [&] { export_model(*c); });
                        return 0;
                      }});
}

}  // namespace fedgan::cli
