// Federated distillation's settings (see include/fedgan/federated/distill/distill_config.hpp).
#include "fedgan/federated/distill/distill_config.hpp"

#include <sstream>

#include "fedgan/core/error.hpp"

namespace fedgan::federated {

const ChoiceTable<Choice<Federation>>& federations() {
  static const Choice<Federation> entries[] = {
      {Federation::FedAvg, "fedavg", "parties train G and D; the round averages their weights"},
      {Federation::Distill, "distill",
       "one global G, each party keeps its own D (--party-discriminators); parties send D's "
       "feedback on G's images, combined as UA-GAN does"},
  };
  static const ChoiceTable<Choice<Federation>> table(entries, "--federation", "federation");
  return table;
}

const ChoiceTable<Choice<FeedbackCombine>>& feedback_combines() {
  static const Choice<FeedbackCombine> entries[] = {
      {FeedbackCombine::Ua, "ua",
       "UA-GAN: the parties' odds D/(1-D) weighted by n_k make one D; G targets the mixture of "
       "the parties' data"},
      {FeedbackCombine::Mean, "mean",
       "MD-GAN's averaged error feedback: the n_k-weighted mean of each party's own G loss "
       "(for comparison)"},
  };
  static const ChoiceTable<Choice<FeedbackCombine>> table(entries, "--feedback-combine",
                                                          "feedback combination");
  return table;
}

DiscriminatorSpec parse_discriminator_spec(const std::string& text) {
  DiscriminatorSpec spec;
  spec.text = text;
  const std::string where = "--party-discriminators: entry '" + text + "'";
  if (text.empty() || text == "default") return spec;
  if (text.rfind("script:", 0) == 0) {
    spec.script = text.substr(7);
    if (spec.script.empty()) throw Error(where + ": script: needs a path (script:PATH/D.pt)");
    return spec;
  }
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto eq = item.find('=');
    const std::string key = item.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (key == "dw" && !spec.d_width) {
      std::size_t used = 0;
      int w = 0;
      try {
        w = std::stoi(value, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != value.size() || w < 1 || w > models::kMaxModelWidth)
        throw Error(where + ": dw=" + value + " is not a width in [1, " +
                    std::to_string(models::kMaxModelWidth) + "]");
      spec.d_width = w;
    } else if (key == "dn" && !spec.d_norm) {
      const auto* e = models::d_norms().find(value);
      if (e == nullptr)
        throw Error(where + ": dn=" + value + " is not a normalisation (expected " +
                    models::d_norms().expected() + ")");
      spec.d_norm = e->value;
    } else {
      throw Error(where + ": '" + item +
                  "' is not one of dw=WIDTH, dn=NORM (each once), or script:PATH alone "
                  "(e.g. dw=32,dn=batch or script:models/D.pt)");
    }
  }
  return spec;
}

}  // namespace fedgan::federated
