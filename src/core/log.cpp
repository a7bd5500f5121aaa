// Rank-aware logger set-up (see include/fedgan/core/log.hpp).
#include "fedgan/core/log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace fedgan::log {

void init(int rank, int size, const std::string& file) {
  auto console = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  // Rank 0 talks to the user; other ranks only report trouble, tagged with their rank.
  console->set_level(rank == 0 ? spdlog::level::info : spdlog::level::warn);
  auto logger = std::make_shared<spdlog::logger>("fedgan", console);
  if (size > 1 && rank > 0) {
    logger->set_pattern("[%H:%M:%S] [rank " + std::to_string(rank) + "] [%^%l%$] %v");
  } else {
    logger->set_pattern("[%H:%M:%S] [%^%l%$] %v");
  }
  logger->set_level(spdlog::level::debug);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  if (!file.empty()) add_file(file);
}

void add_file(const std::string& file) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, false);
  sink->set_level(spdlog::level::info);
  spdlog::default_logger()->sinks().push_back(sink);
}

}  // namespace fedgan::log
