// fedgan::cli::main: MPI start, CLI11 parsing (with --config TOML), dispatch, error agreement.
#include "fedgan/cli/app.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <thread>

#include "fedgan/cli/command.hpp"
#include "fedgan/cli/config_file.hpp"
#include "fedgan/cli/validators.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/core/log.hpp"
#include "fedgan/core/torch_compat.hpp"

namespace fedgan::cli {
namespace {

int node_cores() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

// Intra-op threads of this rank. --threads above the node's cores is refused: every rank would
// time-slice its threads with the others' (1000 threads on 2 ranks finished no round in 120 s),
// and no setting gains anything there. OMP_NUM_THREADS comes from the environment (a module
// file, a site default) rather than from the user's command line, so it is clamped with a
// warning instead. More threads on the node than cores in total only warns: oversubscribing
// ranks is mpirun's --oversubscribe decision, and it is slow, not wrong.
int choose_threads(comm::Communicator& comm, int requested) {
  const int cores = node_cores();
  const int ranks_here = std::max(1, comm.local_size());
  const int fair = std::max(1, cores / ranks_here);
  comm.agree_ok(requested <= cores, "--threads " + std::to_string(requested) + ": more than the " +
                                        std::to_string(cores) +
                                        " cores of this node; use at most " + std::to_string(fair) +
                                        " with " + std::to_string(ranks_here) +
                                        " rank(s) on the node (the default)");
  int threads = requested;
  if (threads == 0) {
    threads = fair;
    if (const char* env = std::getenv("OMP_NUM_THREADS")) {
      const int n = std::atoi(env);
      if (n > cores) {
        spdlog::warn(
            "OMP_NUM_THREADS={} exceeds the {} cores of this node: using {} threads per "
            "rank",
            n, cores, fair);
      } else if (n > 0) {
        threads = n;
      }
    }
  }
  if (threads * ranks_here > cores && comm.local_rank() == 0)
    spdlog::warn(
        "{} rank(s) x {} threads on a node of {} cores: the threads share cores, "
        "which slows every rank (use --threads {})",
        ranks_here, threads, cores, fair);
  return threads;
}

bool asks_for_help(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h" || a == "--version") return true;
  }
  return false;
}

// The root app: --config, --threads, --version and every subcommand.
void build_app(CLI::App& app, int& threads, Commands& commands) {
  app.set_config("--config", "", "TOML file with options; [section] names the subcommand, "
                 "command-line flags override it");
  app.config_formatter(std::make_shared<PartyTableConfig>());  // [[party]] tables
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.require_subcommand(1, 1);
  app.fallthrough();  // root options (--threads, --config) may also follow the subcommand
  app.set_version_flag("--version", std::string("fedgan 0.1.0 (LibTorch ") +
                                        compat::torch_version() + ")");
  app.add_option("--threads", threads,
                 "intra-op threads per rank, at most the node's cores (default: OMP_NUM_THREADS, "
                 "else the node's cores / ranks on the node)")
      ->check(non_negative());
  add_info_command(app, commands);
  add_train_command(app, commands);
  add_pretrain_command(app, commands);
  add_sample_command(app, commands);
  add_export_command(app, commands);
  add_distill_command(app, commands);
  add_prepare_command(app, commands);
  add_evaluator_command(app, commands);
  add_eval_command(app, commands);
  add_privacy_command(app, commands);
  add_debug_command(app, commands);
}

// Checks the config file (CLI11 2.1 reads it leniently), then parses. Every rank reads the same
// file and argv, so every rank reaches the same verdict and only rank 0 speaks. Returns the
// exit code when the program must end here (a bad file or flag, --help, --version).
std::optional<int> parse_arguments(CLI::App& app, comm::Communicator& comm, int argc,
                                   char** argv) {
  const auto config_path = config_path_from_args(argc, argv);
  std::vector<ConfigEntry> config_entries;
  try {
    std::vector<std::pair<std::string, std::string>> party_options;
    if (config_path && !asks_for_help(argc, argv))
      config_entries = read_config_file(*config_path, app, &party_options);
    // The file's [[party]] tables become train options right after `train`, unless the command
    // line gives that option itself (it overrides the file, as for any key).
    std::vector<std::string> args(argv + 1, argv + argc);
    const auto train = std::find(args.begin(), args.end(), "train");
    if (train != args.end() && !party_options.empty()) {
      auto at = train + 1;
      for (const auto& [option, value] : party_options) {
        const bool given = std::any_of(args.begin(), args.end(), [&](const std::string& a) {
          return a == option || a.rfind(option + "=", 0) == 0;
        });
        if (given) continue;
        at = args.insert(at, {option, value}) + 2;
      }
    }
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments in reverse order
    app.parse(args);
  } catch (const Error& e) {
    if (comm.is_root()) std::cerr << "fedgan: config file " << e.what() << "\n";
    return kUsage;
  } catch (const CLI::ParseError& e) {
    int code = e.get_exit_code();
    const std::string from_file =
        config_path ? attribute_to_config(e.what(), *config_path, config_entries, argc, argv)
                    : std::string(e.what());
    if (comm.is_root() && dynamic_cast<const CLI::ConfigError*>(&e)) {
      std::cerr << "fedgan: config file: " << from_file
                << " (every key must be an option of its [section]'s subcommand; see --help)\n";
    } else if (comm.is_root() && from_file != e.what()) {
      std::cerr << "fedgan: config file " << from_file << "\n";
    } else if (comm.is_root()) {
      code = app.exit(e);
    }
    return code == 0 ? kOk : kUsage;
  }
  return std::nullopt;
}

// Runs the parsed subcommand. A collective error is reported once by rank 0; an error only
// this rank knows, an exhausted memory or an unexpected exception ends the whole job (the
// other ranks may be inside a collective).
int run_command(Commands& commands, comm::Communicator& comm, int threads) {
  const auto abort_job = [&comm](const std::string& message) {
    spdlog::critical("rank {}: {}", comm.rank(), message);
    spdlog::default_logger()->flush();
    comm.abort(kError);
  };
  try {
    compat::set_threads(choose_threads(comm, threads));
    int code = kOk;
    for (auto& command : commands)
      if (command.app->parsed()) code = command.run(comm);
    return code;
  } catch (const Error& e) {
    if (!e.collective()) abort_job(e.what());
    if (comm.is_root()) spdlog::error("{}", e.what());
  } catch (const std::bad_alloc&) {
    abort_job("out of memory (a model, --n or --batch-size too large for this node?)");
  } catch (const std::exception& e) {
    abort_job("unexpected error: " + error_message(e));
  }
  return kError;
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<comm::Communicator> comm;
  try {
    comm = comm::make_mpi_communicator(&argc, &argv);
  } catch (const std::exception& e) {
    std::cerr << "fedgan: cannot start MPI: " << e.what() << "\n";
    return kError;
  }
  log::init(comm->rank(), comm->size());
  CLI::App app{"fedgan: federated GAN training with transfer learning (LibTorch + MPI)"};
  int threads = 0;
  Commands commands;
  build_app(app, threads, commands);
  const auto early_exit = parse_arguments(app, *comm, argc, argv);
  const int code = early_exit ? *early_exit : run_command(commands, *comm, threads);
  spdlog::default_logger()->flush();
  comm.reset();
  comm::finalize_mpi();
  return code;
}

}  // namespace fedgan::cli
