// Federated distillation's settings (docs/DESIGN.md, "Federated distillation"): the federation
// mode (--federation fedavg | distill) and the parties' own discriminators, one spec each
// (--party-discriminators), cycled over party ids. Plain values: the CLI fills them, and a
// config table ([[party]]) can fill the same vector.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "fedgan/core/choice.hpp"
#include "fedgan/models/model_config.hpp"

namespace fedgan::federated {

// fedavg: every party trains G and D, the round averages their weights (the default).
// distill: one global G, each party keeps its own D; parties send D's feedback on G's images.
enum class Federation { FedAvg, Distill };
const ChoiceTable<Choice<Federation>>& federations();

// How the parties' logits become G's loss: UA-GAN's odds (ua, the default) or MD-GAN's mean of
// each party's own loss (mean: for comparison; federated/distill/ua_feedback.hpp).
enum class FeedbackCombine { Ua, Mean };
const ChoiceTable<Choice<FeedbackCombine>>& feedback_combines();

// One party's discriminator: a built-in D of the run's family with its own width and
// normalisation ("dw=16,dn=spectral"; unset fields are the run's --d-width/--d-norm), or a
// TorchScript D ("script:PATH/D.pt").
struct DiscriminatorSpec {
  std::string text;                     // as given; errors and the log name it
  std::optional<int> d_width;           // dw=
  std::optional<models::DNorm> d_norm;  // dn=
  std::string script;                   // script:PATH; empty: built-in
};

// "dw=32,dn=batch", "dn=none", "script:D.pt" (also "" or "default": the run's D). fedgan::Error
// naming --party-discriminators, the entry and what is expected.
DiscriminatorSpec parse_discriminator_spec(const std::string& text);

struct DistillConfig {
  FeedbackCombine combine = FeedbackCombine::Ua;
  // Party k's D is discriminators[k mod size]; empty: every party gets the run's D.
  std::vector<DiscriminatorSpec> discriminators;
  // The TorchScript archives of the script: entries, by index of `discriminators` (empty
  // strings for built-in entries). The run reads them on rank 0 and broadcasts them.
  std::vector<std::string> script_archives;

  const DiscriminatorSpec* spec_of(int party) const {
    return discriminators.empty()
               ? nullptr
               : &discriminators[static_cast<std::size_t>(party) % discriminators.size()];
  }
};

}  // namespace fedgan::federated
