// A subcommand: its CLI11 sub-app and the action run on every rank once parsing is done.
#pragma once

#include "fedgan/comm/communicator.hpp"

#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace fedgan::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int(comm::Communicator&)> run;
};

using Commands = std::vector<Command>;

// Each subcommand file adds itself (options bound to its config struct) and its action.
void add_info_command(CLI::App& root, Commands& commands);
void add_train_command(CLI::App& root, Commands& commands);
void add_pretrain_command(CLI::App& root, Commands& commands);
void add_sample_command(CLI::App& root, Commands& commands);
void add_export_command(CLI::App& root, Commands& commands);
void add_distill_command(CLI::App& root, Commands& commands);
void add_debug_command(CLI::App& root, Commands& commands);
void add_prepare_command(CLI::App& root, Commands& commands);
void add_evaluator_command(CLI::App& root, Commands& commands);
void add_eval_command(CLI::App& root, Commands& commands);
void add_privacy_command(CLI::App& root, Commands& commands);

}  // namespace fedgan::cli
