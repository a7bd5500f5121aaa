// The command-line front end: parses subcommands and config files, wires modules together.
#pragma once

namespace fedgan::cli {

// Exit codes of the fedgan program.
enum ExitCode : int { kOk = 0, kError = 1, kUsage = 2, kPreempted = 3 };

// Entry point behind main(): starts MPI, runs the chosen subcommand, agrees on errors.
int main(int argc, char** argv);

}  // namespace fedgan::cli
