// fedgan::cli::main: MPI start, CLI11 parsing (with --config TOML), dispatch, error agreement.
#include "fedgan/cli/app.hpp"

#include "fedgan/cli/command.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/core/log.hpp"
#include "fedgan/core/torch_compat.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <thread>

namespace fedgan::cli {
namespace {

// OMP_NUM_THREADS wins when set; else the node's cores shared among its ranks.
int default_threads(const Communicator& comm) {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, comm.local_size()));
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<Communicator> comm;
  try {
    comm = make_mpi_communicator(&argc, &argv);
  } catch (const std::exception& e) {
    std::cerr << "fedgan: cannot start MPI: " << e.what() << "\n";
    return kError;
  }
  log::init(comm->rank(), comm->size());

  CLI::App app{"fedgan: federated GAN training with transfer learning (LibTorch + MPI)"};
  app.set_config("--config", "", "TOML file with options; [section] names the subcommand, "
                 "command-line flags override it");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.require_subcommand(1, 1);
  app.fallthrough();  // root options (--threads, --config) may also follow the subcommand
  app.set_version_flag("--version", std::string("fedgan 0.1.0 (LibTorch ") +
                                        compat::torch_version() + ")");
  int threads = 0;
  app.add_option("--threads", threads,
                 "intra-op threads per rank (default: cores of the node / ranks on the node)")
      ->check(CLI::NonNegativeNumber);

  Commands commands;
  add_info_command(app, commands);
  add_train_command(app, commands);
  add_pretrain_command(app, commands);
  add_sample_command(app, commands);
  add_distill_command(app, commands);
  add_prepare_command(app, commands);
  add_evaluator_command(app, commands);
  add_eval_command(app, commands);
  add_debug_command(app, commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Every rank parses the same arguments, so every rank reaches the same verdict.
    int code = 0;
    if (comm->is_root() && dynamic_cast<const CLI::ConfigError*>(&e)) {
      std::cerr << "fedgan: config file: " << e.what()
                << " (every key must be an option of its [section]'s subcommand; see --help)\n";
      code = e.get_exit_code();
    } else if (comm->is_root()) {
      code = app.exit(e);
    } else {
      code = e.get_exit_code();
    }
    comm.reset();
    finalize_mpi();
    return code == 0 ? kOk : kUsage;
  }

  compat::set_threads(threads > 0 ? threads : default_threads(*comm));
  int code = kOk;
  try {
    for (auto& command : commands) {
      if (command.app->parsed()) code = command.run(*comm);
    }
  } catch (const Error& e) {
    if (!e.collective()) {
      // Only this rank knows: the others may be inside a collective. End the job.
      spdlog::critical("rank {}: {}", comm->rank(), e.what());
      spdlog::default_logger()->flush();
      comm->abort(kError);
    }
    if (comm->is_root()) spdlog::error("{}", e.what());
    code = kError;
  } catch (const std::exception& e) {
    spdlog::critical("rank {}: unexpected error: {}", comm->rank(), e.what());
    spdlog::default_logger()->flush();
    comm->abort(kError);
  }
  spdlog::default_logger()->flush();
  comm.reset();
  finalize_mpi();
  return code;
}

}  // namespace fedgan::cli
