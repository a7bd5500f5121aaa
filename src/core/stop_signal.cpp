// Stop-signal flag (see include/fedgan/core/stop_signal.hpp).
#include "fedgan/core/stop_signal.hpp"

#include <csignal>

namespace fedgan {
namespace {

volatile std::sig_atomic_t g_signal = 0;
volatile std::sig_atomic_t g_sender = 0;  // a pid_t (an int on Linux)

extern "C" void on_stop_signal(int sig, siginfo_t* info, void*) {
  g_sender = info ? static_cast<std::sig_atomic_t>(info->si_pid) : 0;
  g_signal = sig;
}

}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_sigaction = on_stop_signal;
  sigemptyset(&action.sa_mask);
  // SA_RESTART: MPI and file calls resume, we look at the flag ourselves; SA_SIGINFO: the sender.
  action.sa_flags = SA_RESTART | SA_SIGINFO;
  sigaction(SIGUSR1, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool stop_requested() { return g_signal != 0; }
int stop_signal() { return static_cast<int>(g_signal); }
int stop_signal_sender() { return static_cast<int>(g_sender); }
void request_stop(int signal_number) {
  g_sender = 0;
  g_signal = signal_number;
}

}  // namespace fedgan
