// ModelConfig: what fixes a GAN's architecture; its text form is stored in checkpoints.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "fedgan/core/choice.hpp"

namespace fedgan::models {

// Upper bounds of the sizes a ModelConfig may hold (the CLI and checkpoints are held to them):
// a width of 4096 is already a model of hundreds of millions of values.
inline constexpr int kMaxModelWidth = 4096;  // latent_dim, g_width, d_width
inline constexpr int kMaxClasses = 65536;
// The largest rank of G's kernel modulation (AdAM; models/modulation.hpp): a rank beyond it is
// no longer a few-shot adaptation.
inline constexpr int kMaxModulationRank = 64;

// D's normalisation (--d-norm, "dn=" in the architecture string): batch | none (WGAN-GP prefers
// none) | spectral (Miyato et al. 2018).
enum class DNorm { Batch, None, Spectral };
const ChoiceTable<Choice<DNorm>>& d_norms();
std::string to_string(DNorm norm);

// The family of user models given as TorchScript archives (models/torchscript.hpp).
inline constexpr const char* kTorchScriptFamily = "torchscript";

// The bytes of a TorchScript generator and discriminator (torch.jit.save archives), as rank 0
// read them and every rank received them. id(): 16 hex digits of a BLAKE2b hash of both, which
// the architecture string carries, so a checkpoint or resume names the exact model.
struct ScriptArchives {
  std::string generator, discriminator;
  std::string id() const;
};

struct ModelConfig {
  std::string family = "dcgan";
  int channels = 1;     // image channels C
  int image_size = 28;  // H = W (the built-in dcgan: 28, 32, 64 or 128)
  int latent_dim = 64;  // z size
  int g_width = 64;     // generator base width (channels of its last hidden block)
  int d_width = 64;     // discriminator base width (channels of its first block)
  int num_classes = 0;  // > 0: conditional G (label embedding) and projection D
  DNorm d_norm = DNorm::Batch;
  // Rank R of G's low-rank kernel modulation W' = W ⊙ (1 + A Bᵀ) (AdAM, Zhao et al. 2022;
  // models/modulation.hpp); 0: none. "gm=R" in the text form, written only when R > 0 (so every
  // architecture string without it reads as before); dcgan only.
  int g_mod_rank = 0;
  // Family "torchscript" only: the archives (shared, never changed) and their id. gw, dw and dn
  // mean nothing there and are not part of the text form.
  std::shared_ptr<const ScriptArchives> scripts;
  std::string script_id;

  bool is_torchscript() const { return family == kTorchScriptFamily; }
  // Sets scripts and script_id.
  void set_scripts(ScriptArchives archives);

  // e.g. "dcgan c=1 s=28 z=64 gw=64 dw=64 k=0 dn=batch" (+ " gm=1" with a modulation), or "torchscript c=3 s=64 z=128 k=0
  // id=0123456789abcdef"; parse() is its inverse (it cannot restore `scripts`: the caller sets
  // them and checks the id). parse() needs every key of the family once (gm= is optional),
  // integers in range
  // (validate()); fedgan::Error saying which item is wrong.
  std::string to_string() const;
  static ModelConfig parse(const std::string& text);
  // fedgan::Error naming the field and its allowed range when a value is out of range.
  void validate() const;
  bool operator==(const ModelConfig& o) const { return to_string() == o.to_string(); }
  bool operator!=(const ModelConfig& o) const { return !(*this == o); }
};

}  // namespace fedgan::models
