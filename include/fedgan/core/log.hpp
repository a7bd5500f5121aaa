// One logger for the whole program: rank 0 prints info, other ranks only warnings and errors.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace fedgan::log {

// Sets up the default logger for this rank; call once after the communicator exists.
// `file` (optional) also receives every message of this rank.
void init(int rank, int size, const std::string& file = "");

// Adds a file sink (e.g. the run directory's log.txt) to the current logger.
void add_file(const std::string& file);

}  // namespace fedgan::log
