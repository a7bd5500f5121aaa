// The run directory: config.toml, metrics.csv, checkpoints/, samples/, log.txt (docs/DESIGN.md).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fedgan::io {

class RunDirectory {
 public:
  explicit RunDirectory(std::string root) : m_root(std::move(root)) {}

  // Creates the layout. A directory that already holds a run (config.toml or metrics.csv) is
  // refused unless `resume` (keep it) or `force` (start over, removing the old run's files).
  void prepare(bool resume, bool force) const;
  bool holds_run() const;

  const std::string& root() const { return m_root; }
  std::string config() const { return m_root + "/config.toml"; }
  std::string metrics() const { return m_root + "/metrics.csv"; }
  // Every party's local training per round: steps, measured and simulated seconds.
  std::string party_times() const { return m_root + "/party_times.csv"; }
  // The controller's decisions (--auto).
  std::string decisions() const { return m_root + "/decisions.csv"; }
  std::string log() const { return m_root + "/log.txt"; }
  std::string latest_checkpoint() const { return m_root + "/checkpoints/latest.h5"; }
  std::string checkpoint(std::int64_t round) const;
  std::string samples(std::int64_t round) const;

 private:
  std::string m_root;
};

// One row of metrics.csv, its cells set by column name (in any order); an empty cell is set
// explicitly (""), so a row that forgot a column is an error, not a shifted line.
class MetricsRow {
 public:
  // fedgan::Error when `column` was set already in this row.
  MetricsRow& set(const std::string& column, std::string value);
  const std::map<std::string, std::string>& cells() const { return m_cells; }

 private:
  std::map<std::string, std::string> m_cells;
};

// metrics.csv: a header and one row per round, rewritten atomically after each row so a
// crash never leaves a torn line; on resume, rows after the resumed round are dropped.
class MetricsCsv {
 public:
  // `columns`: the header, in order; the first is the round.
  MetricsCsv(std::string path, std::vector<std::string> columns);
  // Keeps the existing rows whose first column (the round) is <= `round`.
  void load_existing(std::int64_t round);
  // Writes the row's cells in the header's order. fedgan::Error (nothing written) naming the
  // columns when the row lacks one of the header's columns or has one the header lacks.
  void append(const MetricsRow& row);
  const std::vector<std::string>& columns() const { return m_columns; }

 private:
  std::string m_path;
  std::vector<std::string> m_columns;
  std::string m_header;
  std::vector<std::string> m_rows;
};

}  // namespace fedgan::io
