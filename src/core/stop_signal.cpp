// Stop-signal flag (see include/fedgan/core/stop_signal.hpp).
#include "fedgan/core/stop_signal.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdlib>

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

const char* const kFromMpirunNote =
    ". This SIGTERM came from mpirun, which was itself sent SIGTERM: Open MPI's mpirun then kills "
    "the ranks within about a second and exits with code 1, not 3. To stop a run cleanly, send "
    "SIGUSR1 to mpirun (it forwards it) or SIGTERM to the ranks";

bool term_from_open_mpi_launcher() {
  return stop_signal() == SIGTERM && stop_signal_sender() == static_cast<int>(::getppid()) &&
         std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr;
}

std::string describe_stop_signal(int signal, int first_rank, int ranks) {
  std::string name = signal == SIGUSR1   ? "SIGUSR1"
                     : signal == SIGTERM ? "SIGTERM"
                                         : "signal " + std::to_string(signal);
  if (signal == SIGUSR1 || signal == SIGTERM) name += " (" + std::to_string(signal) + ")";
  return "stop signal " + name + (ranks > 1 ? " on rank " + std::to_string(first_rank) : "");
}

}  // namespace fedgan
