// Run directory layout and metrics.csv (see include/fedgan/io/run_directory.hpp).
#include "fedgan/io/run_directory.hpp"

#include "fedgan/core/error.hpp"
#include "fedgan/io/atomic_file.hpp"

#include <algorithm>
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
    for (const char* name : {"config.toml", "metrics.csv", "party_times.csv", "decisions.csv", "log.txt"}) fs::remove(m_root + "/" + name, ec);
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

MetricsRow& MetricsRow::set(const std::string& column, std::string value) {
  if (!m_cells.emplace(column, std::move(value)).second)
    throw Error("metrics.csv: column '" + column + "' set twice in one row");
  return *this;
}

MetricsCsv::MetricsCsv(std::string path, std::vector<std::string> columns)
    : m_path(std::move(path)), m_columns(std::move(columns)) {
  for (std::size_t i = 0; i < m_columns.size(); ++i) m_header += (i ? "," : "") + m_columns[i];
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

void MetricsCsv::append(const MetricsRow& row) {
  std::string line, missing, unknown;
  for (std::size_t i = 0; i < m_columns.size(); ++i) {
    const auto it = row.cells().find(m_columns[i]);
    if (it == row.cells().end())
      missing += (missing.empty() ? "" : ", ") + m_columns[i];
    else
      line += (i ? "," : "") + it->second;
  }
  for (const auto& [column, value] : row.cells())
    if (std::find(m_columns.begin(), m_columns.end(), column) == m_columns.end())
      unknown += (unknown.empty() ? "" : ", ") + column;
  if (!missing.empty() || !unknown.empty())
    throw Error(m_path + ": a row " + (missing.empty() ? "" : "lacks the column(s) " + missing) +
                (!missing.empty() && !unknown.empty() ? " and " : "") +
                (unknown.empty() ? "" : "has column(s) the header lacks: " + unknown) +
                " (nothing written)");
  m_rows.push_back(line);
  std::ostringstream text;
  text << m_header << "\n";
  for (const auto& r : m_rows) text << r << "\n";
  write_text_atomically(m_path, text.str());
}

}  // namespace fedgan::io
