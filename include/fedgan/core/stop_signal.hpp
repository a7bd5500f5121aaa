// Cooperative stop on SIGUSR1/SIGTERM (Slurm preemption): the handler only sets a flag; the
// round loop notices it at its next agreement point, checkpoints and exits with code 3.
#pragma once

#include <string>

namespace fedgan {

// Installs handlers for SIGUSR1 and SIGTERM (idempotent).
void install_stop_handlers();
// True once a stop signal has arrived in this process.
bool stop_requested();
// The signal number that arrived (0 if none).
int stop_signal();
// The pid of the process that sent it (0 if unknown or none).
int stop_signal_sender();

// "stop signal SIGUSR1 (10) on rank 1" (the rank only when ranks > 1), for the log.
std::string describe_stop_signal(int signal, int first_rank, int ranks);
// Open MPI's mpirun forwards SIGUSR1 to the ranks, but a SIGTERM sent to mpirun itself makes
// it abort the job: it sends SIGTERM to the ranks, kills them about a second later
// (odls_base_sigkill_timeout) and exits with its own code 1 whatever the ranks return (measured
// with Open MPI 4.1). A rank sees that case as a SIGTERM from its launcher, its parent process.
bool term_from_open_mpi_launcher();
// What the log adds in that case.
extern const char* const kFromMpirunNote;

}  // namespace fedgan
