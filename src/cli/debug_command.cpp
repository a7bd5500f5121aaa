// `fedgan debug-fail`: a hidden command the tests use to prove that one failing rank ends the
// whole job with its message (agreed, or through abort) instead of hanging the others.
#include "fedgan/cli/command.hpp"
#include "fedgan/comm/collective.hpp"
#include "fedgan/core/error.hpp"

#include <chrono>
#include <thread>

namespace fedgan::cli {
namespace {
struct DebugFailConfig {
  int rank = 0;
  std::string mode = "agreed";  // agreed: collective_try; local: throw outside any agreement
};
}  // namespace

void add_debug_command(CLI::App& root, Commands& commands) {
  auto config = std::make_shared<DebugFailConfig>();
  auto* sub = root.add_subcommand("debug-fail", "(testing) make one rank fail");
  sub->group("");  // hidden from --help
  sub->add_option("--rank", config->rank, "the rank that fails");
  sub->add_option("--mode", config->mode, "agreed | local")
      ->check(CLI::IsMember({"agreed", "local"}));
  commands.push_back({sub, [config](comm::Communicator& comm) {
                        const bool me = comm.rank() == config->rank;
                        if (config->mode == "agreed") {
                          comm::collective_try(comm, [&] {
                            if (me) throw Error("debug-fail: injected failure");
                          });
                        } else {
                          if (me) throw Error("debug-fail: injected local failure");
                          // The others wait in a collective the failing rank never joins.
                          comm.barrier();
                        }
                        return 0;
                      }});
}

}  // namespace fedgan::cli
