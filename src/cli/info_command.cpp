// `fedgan info`: what this job sees (ranks, nodes, threads, LibTorch, devices).
#include "fedgan/cli/command.hpp"
#include "fedgan/core/torch_compat.hpp"

#include <spdlog/spdlog.h>

#include <sstream>

namespace fedgan::cli {

void add_info_command(CLI::App& root, Commands& commands) {
  auto* sub = root.add_subcommand("info", "print the job layout: ranks, nodes, threads, devices");
  commands.push_back({sub, [](Communicator& comm) {
                        std::ostringstream line;
                        line << "rank " << comm.rank() << "/" << comm.size() << " local "
                             << comm.local_rank() << "/" << comm.local_size()
                             << " threads " << torch::get_num_threads() << " cuda "
                             << (torch::cuda::is_available() ? torch::cuda::device_count() : 0);
                        auto lines = comm.allgather(line.str());
                        if (comm.is_root()) {
                          spdlog::info("fedgan on LibTorch {}, backend {}",
                                       compat::torch_version(), comm.backend());
                          for (auto& l : lines) spdlog::info("  {}", l);
                        }
                        return 0;
                      }});
}

}  // namespace fedgan::cli
