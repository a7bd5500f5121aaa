// Cooperative stop on SIGUSR1/SIGTERM (Slurm preemption): the handler only sets a flag; the
// round loop notices it at its next agreement point, checkpoints and exits with code 3.
#pragma once

namespace fedgan {

// Installs handlers for SIGUSR1 and SIGTERM (idempotent).
void install_stop_handlers();
// True once a stop signal has arrived in this process.
bool stop_requested();
// The signal number that arrived (0 if none).
int stop_signal();
// The pid of the process that sent it (0 if unknown or none).
int stop_signal_sender();
// Testing aid: behave as if a stop signal had arrived.
void request_stop(int signal_number);

}  // namespace fedgan
