// `train`'s federation mode (--federation fedavg | distill) and the parties' own discriminators
// of federated distillation (--party-discriminators), and their typed form.
#include "fedgan/cli/train_options.hpp"
#include "fedgan/cli/validators.hpp"
#include "fedgan/core/error.hpp"

namespace fedgan::cli {

std::vector<federated::DiscriminatorSpec> parse_party_discriminators(const std::string& text) {
  std::vector<federated::DiscriminatorSpec> out;
  if (text.empty()) return out;
  std::size_t a = 0;
  while (true) {
    const auto b = text.find(';', a);
    out.push_back(federated::parse_discriminator_spec(
        text.substr(a, b == std::string::npos ? std::string::npos : b - a)));
    if (b == std::string::npos) break;
    a = b + 1;
  }
  return out;
}

void add_federation_options(CLI::App& sub, TrainOptions& o) {
  const std::string group = "Federation (docs/reference.md, Federated distillation)";
  add_choice(sub, o.federation, federated::federations(), "what the parties send")->group(group);
  sub.add_option("--party-discriminators", o.party_discriminators,
                 "--federation distill: each party's own D, entries separated by ';' and cycled "
                 "over party ids (party k gets entry k mod the count): dw=WIDTH and/or "
                 "dn=batch|none|spectral (unset: --d-width, --d-norm), or script:PATH (a "
                 "TorchScript D), e.g. 'dw=32,dn=batch;dw=16,dn=spectral;script:D.pt'; empty: "
                 "every party gets the run's D")
      ->check(parsed_by([](const std::string& s) { parse_party_discriminators(s); },
                        "--party-discriminators", "SPEC;SPEC;..."))
      ->group(group);
  add_choice(sub, o.feedback_combine, federated::feedback_combines(),
             "--federation distill: how the parties' logits make G's loss")
      ->group(group);
}

}  // namespace fedgan::cli
