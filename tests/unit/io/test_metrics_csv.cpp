// metrics.csv: cells are set by column name and written in the header's order; a row that
// lacks a column, names one the header lacks, or sets one twice is an error and writes nothing.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "fedgan/core/error.hpp"
#include "fedgan/io/run_directory.hpp"
#include "temp_dir.hpp"

using namespace fedgan;
using Catch::Matchers::Contains;
using fedgan::testing::TempDir;

namespace {
std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("metrics.csv rows are written by column name, and their width is checked", "[io]") {
  TempDir dir;
  const auto path = dir.file("metrics.csv");
  io::MetricsCsv csv(path, {"round", "d_loss", "fid_all"});
  io::MetricsRow row;
  row.set("fid_all", "").set("d_loss", "0.5").set("round", "1");  // any order
  csv.append(row);
  CHECK(read_all(path) == "round,d_loss,fid_all\n1,0.5,\n");

  io::MetricsRow short_row;
  short_row.set("round", "2").set("d_loss", "0.4");
  CHECK_THROWS_WITH(csv.append(short_row), Contains("lacks the column(s) fid_all"));
  io::MetricsRow wide_row;
  wide_row.set("round", "2").set("d_loss", "0.4").set("fid_all", "3").set("kid", "1");
  CHECK_THROWS_WITH(csv.append(wide_row), Contains("has column(s) the header lacks: kid"));
  CHECK(read_all(path) == "round,d_loss,fid_all\n1,0.5,\n");  // nothing written by either

  io::MetricsRow twice;
  twice.set("round", "3");
  CHECK_THROWS_WITH(twice.set("round", "4"), Contains("'round' set twice"));
}
