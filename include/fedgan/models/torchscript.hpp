// User models given as TorchScript archives (family "torchscript"): a generator and a
// discriminator written in PyTorch and saved with torch.jit.script(...).save(...). The interface
// (docs/DESIGN.md, "Models"; examples/models/README.md):
//   G.forward(z) or G.forward(z, y) -> images [B, C, H, W] in [-1, 1]
//   D.forward(x) or D.forward(x, y) -> one logit per image, [B] (or [B, 1])
//   optional: int attributes latent_dim and num_classes on G; D.features(x) -> [B, F];
//             List[str] attribute fedgan_blocks on G and D (block name prefixes, input first).
// The modules' parameters and floating buffers are mirrored into a torch::nn::Module tree under
// the same names, so FlatParameters, checkpoints, freezing and every strategy see them exactly as
// they see a built-in model; the TorchScript graph reads and writes the same tensors.
#pragma once

#include "fedgan/models/gan.hpp"

#include <torch/script.h>

#include <optional>
#include <string>
#include <vector>

namespace fedgan::models {

// What an archive pair declares, read without running it.
struct ScriptInfo {
  bool conditional = false;                 // forward takes (input, y)
  std::optional<int> latent_dim;            // G's latent_dim attribute, when it has one
  std::optional<int> num_classes;           // G's num_classes attribute, when it has one
  std::int64_t g_values = 0, d_values = 0;  // parameters + floating buffers
};

// Loads an archive from bytes; `what` names it in errors ("G.pt (--generator)"). fedgan::Error
// when the bytes are not a TorchScript archive, a parameter or buffer is not float32 / int64, or
// forward does not take one or two tensors.
torch::jit::Module load_script(const std::string& bytes, const std::string& what);

// Both archives loaded once, to be inspected and dry-run before a run builds its models (the
// pair is for checking only: the dry run leaves it in eval mode).
struct ScriptPair {
  torch::jit::Module generator, discriminator;
  std::string g_what, d_what;  // how errors name them
};
ScriptPair load_scripts(const ScriptArchives& archives, const std::string& g_what,
                        const std::string& d_what);

// Reads both modules' declarations (fedgan::Error naming the archive at fault, including G and
// D disagreeing on being conditional).
ScriptInfo inspect_scripts(const ScriptPair& scripts);

// One dry forward of the pair on the CPU (eval mode, no gradient, batch of 2): G's output must
// be [2, C, S, S] within [-1, 1], D's [2] or [2, 1], both finite. fedgan::Error naming the
// archive and what does not fit `config` (its channels, size, latent size and classes).
void check_script_interface(ScriptPair& scripts, const ModelConfig& config);

// A discriminator alone from an archive (federated distillation: a party's own D); `what` names
// it in errors. fedgan::Error as load_script.
std::shared_ptr<Discriminator> make_script_discriminator(const std::string& bytes,
                                                         const std::string& what);

// The TorchScript module behind a model of family "torchscript", or nullptr for built-in ones
// (its tensors are the model's: saving it saves the current values).
torch::jit::Module* script_module(torch::nn::Module& model);

// Referenced from gan.cpp so the linker keeps the registration in the static library.
bool torchscript_registered();

}  // namespace fedgan::models
