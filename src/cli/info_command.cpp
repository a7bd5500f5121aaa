// `fedgan info`: what this job sees (ranks, nodes, threads, LibTorch, CUDA, devices, NCCL).
#include "fedgan/cli/command.hpp"
#include "fedgan/core/device.hpp"
#include "fedgan/core/torch_compat.hpp"

#include <spdlog/spdlog.h>
#include <torch/utils.h>

#include <sstream>

namespace fedgan::cli {

void add_info_command(CLI::App& root, Commands& commands) {
  auto* sub = root.add_subcommand("info", "print the job layout: ranks, nodes, threads, devices");
  commands.push_back({sub, [](comm::Communicator& comm) {
                        const int gpus = compat::cuda_device_count();
                        const auto device = choose_device(DeviceKind::Auto, comm.local_rank());
                        std::ostringstream line;
                        line << "rank " << comm.rank() << "/" << comm.size() << " local "
                             << comm.local_rank() << "/" << comm.local_size() << " threads "
                             << torch::get_num_threads() << " visible GPUs " << gpus
                             << " device (--device auto) " << device.str();
                        auto lines = comm.allgather(line.str());
                        if (comm.is_root()) {
                          spdlog::info("fedgan on LibTorch {} (CUDA {}), backend {}, NCCL {}",
                                       compat::torch_version(),
                                       compat::cuda_available() ? "available" : "not available",
                                       comm.backend(),
                                       comm::nccl_built() ? comm::nccl_version() : "not built");
                          for (auto& l : lines) spdlog::info("  {}", l);
                        }
                        return 0;
                      }});
}

}  // namespace fedgan::cli
