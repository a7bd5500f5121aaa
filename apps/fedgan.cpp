// The fedgan executable: everything lives in the library; see fedgan::cli::main.
#include "fedgan/cli/app.hpp"

int main(int argc, char** argv) { return fedgan::cli::main(argc, argv); }
