// --width-ratio of sample and eval (see include/fedgan/cli/width_ratio.hpp).
#include "fedgan/cli/width_ratio.hpp"

#include "fedgan/federated/round/width_levels.hpp"

namespace fedgan::cli {

void add_width_ratio_option(CLI::App& sub, double& ratio) {
  sub.add_option("--width-ratio", ratio,
                 "the sub-model of width ratio r in (0, 1]: the leading r of every hidden "
                 "layer's channels (a run with --width-ratios trained it; 1: the full model)")
      ->capture_default_str();
}

std::unique_ptr<models::Gan> width_submodel(const models::Gan& global,
                                            const io::CheckpointData& checkpoint, double ratio,
                                            const std::string& file) {
  federated::WidthConfig widths;
  if (!checkpoint.widths.empty())
    widths = federated::WidthConfig::parse(checkpoint.widths, file + ": attribute widths");
  return federated::cut_submodel(global, ratio, widths, file + ": --width-ratio");
}

}  // namespace fedgan::cli
