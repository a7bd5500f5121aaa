// Stop-signal flag (see include/fedgan/core/stop_signal.hpp).
#include "fedgan/core/stop_signal.hpp"

#include <csignal>

namespace fedgan {
namespace {

volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_stop_signal(int sig) { g_signal = sig; }

}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // MPI and file calls resume; we look at the flag ourselves
  sigaction(SIGUSR1, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool stop_requested() { return g_signal != 0; }
int stop_signal() { return static_cast<int>(g_signal); }
void request_stop(int signal_number) { g_signal = signal_number; }

}  // namespace fedgan
