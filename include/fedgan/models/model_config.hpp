// ModelConfig: what fixes a GAN's architecture; its text form is stored in checkpoints.
#pragma once

#include <cstdint>
#include <string>

#include "fedgan/core/choice.hpp"

namespace fedgan::models {

// Upper bounds of the sizes a ModelConfig may hold (the CLI and checkpoints are held to them):
// a width of 4096 is already a model of hundreds of millions of values.
inline constexpr int kMaxModelWidth = 4096;  // latent_dim, g_width, d_width
inline constexpr int kMaxClasses = 65536;

// D's normalisation (--d-norm, "dn=" in the architecture string): batch | none (WGAN-GP prefers
// none) | spectral (Miyato et al. 2018).
enum class DNorm { Batch, None, Spectral };
const ChoiceTable<Choice<DNorm>>& d_norms();
std::string to_string(DNorm norm);

struct ModelConfig {
  std::string family = "dcgan";
  int channels = 1;     // image channels C
  int image_size = 28;  // H = W: 28, 32 or 64
  int latent_dim = 64;  // z size
  int g_width = 64;     // generator base width (channels of its last hidden block)
  int d_width = 64;     // discriminator base width (channels of its first block)
  int num_classes = 0;  // > 0: conditional G (label embedding) and projection D
  DNorm d_norm = DNorm::Batch;

  // e.g. "dcgan c=1 s=28 z=64 gw=64 dw=64 k=0 dn=batch"; parse() is its inverse. parse() needs
  // every key once, integers in range (validate()); fedgan::Error saying which item is wrong.
  std::string to_string() const;
  static ModelConfig parse(const std::string& text);
  // fedgan::Error naming the field and its allowed range when a value is out of range.
  void validate() const;
  bool operator==(const ModelConfig& o) const { return to_string() == o.to_string(); }
  bool operator!=(const ModelConfig& o) const { return !(*this == o); }
};

}  // namespace fedgan::models
