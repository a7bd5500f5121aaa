// `--width-ratio r` of sample and eval: the sub-model of a checkpoint's generator at width r.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "fedgan/io/checkpoint.hpp"
#include "fedgan/models/gan.hpp"

namespace fedgan::cli {

// Adds --width-ratio (bound to `ratio`) to a command.
void add_width_ratio_option(CLI::App& sub, double& ratio);

// The sub-model at `ratio` of `global` (which holds the checkpoint's generator), with the
// checkpoint's BN mode and scaler (federated::cut_submodel); a checkpoint trained without widths
// gets the defaults (static BN, scaler on). fedgan::Error naming `file` for a bad ratio.
std::unique_ptr<models::Gan> width_submodel(const models::Gan& global,
                                            const io::CheckpointData& checkpoint, double ratio,
                                            const std::string& file);

}  // namespace fedgan::cli
