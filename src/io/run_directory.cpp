// Run directory layout and metrics.csv (see include/fedgan/io/run_directory.hpp).
#include "fedgan/io/run_directory.hpp"

#include "fedgan/core/error.hpp"
#include "fedgan/io/atomic_file.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fedgan::io {
namespace fs = std::filesystem;

namespace {
std::string numbered(const std::string& dir, const char* stem, std::int64_t round,
                     const char* ext) {
  char name[64];
  std::snprintf(name, sizeof(name), "%s_%04lld%s", stem, static_cast<long long>(round), ext);
  return dir + "/" + name;
}
}  // namespace

bool RunDirectory::holds_run() const {
  return fs::exists(config()) || fs::exists(metrics());
}

void RunDirectory::prepare(bool resume, bool force) const {
  std::error_code ec;
  if (fs::exists(m_root) && !fs::is_directory(m_root))
    throw Error(m_root + ": --out exists and is not a directory");
  if (holds_run() && !resume && !force)
    throw Error(m_root + ": the output directory holds another run (config.toml/metrics.csv); "
                         "use --resume to continue it or --force to start over");
  if (force && !resume) {
    for (const char* name : {"config.toml", "metrics.csv", "log.txt"}) fs::remove(m_root + "/" + name, ec);
    remove_tree(m_root + "/checkpoints");
    remove_tree(m_root + "/samples");
  }
  for (const char* sub : {"", "/checkpoints", "/samples"}) {
    fs::create_directories(m_root + sub, ec);
    if (ec) throw Error(m_root + sub + ": cannot create directory: " + ec.message());
  }
}

std::string RunDirectory::checkpoint(std::int64_t round) const {
  return numbered(m_root + "/checkpoints", "round", round, ".h5");
}

std::string RunDirectory::samples(std::int64_t round) const {
  return numbered(m_root + "/samples", "round", round, ".png");
}

MetricsCsv::MetricsCsv(std::string path, std::vector<std::string> columns) : m_path(std::move(path)) {
  for (std::size_t i = 0; i < columns.size(); ++i) m_header += (i ? "," : "") + columns[i];
}

void MetricsCsv::load_existing(std::int64_t round) {
  m_rows.clear();
  std::ifstream in(m_path);
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (header) {
      header = false;
      continue;
    }
    if (line.empty()) continue;
    try {
      if (std::stoll(line.substr(0, line.find(','))) <= round) m_rows.push_back(line);
    } catch (const std::exception&) {
      throw Error(m_path + ": cannot read row '" + line + "' (expected a round number first)");
    }
  }
}

void MetricsCsv::append(const std::vector<std::string>& row) {
  std::string line;
  for (std::size_t i = 0; i < row.size(); ++i) line += (i ? "," : "") + row[i];
  m_rows.push_back(line);
  std::ostringstream text;
  text << m_header << "\n";
  for (const auto& r : m_rows) text << r << "\n";
  write_text_atomically(m_path, text.str());
}

}  // namespace fedgan::io
