// The --config file, checked before CLI11 reads it. CLI11 2.1's TOML reader is lenient: a
// repeated key keeps its first value, a repeated [section] is read silently, an array given to
// a one-value option keeps its last element, and an unknown [section] is reported as
// "INI was not able to parse trian.++". Here every such fault is an error naming the file and
// line; errors CLI11 still raises for values from the file are re-worded to name them too.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace fedgan::cli {

struct ConfigEntry {
  std::string section;  // subcommand name, "" outside any section
  std::string key;      // option name without dashes
  std::vector<std::string> values;
  int line = 0;
  std::string text;  // the line as written
};

// The file named by --config FILE or --config=FILE in argv, if any.
std::optional<std::string> config_path_from_args(int argc, char** argv);

// Reads `path` as CLI11 would and checks it against the options of `root` and its
// subcommands: known sections and keys, no key or section twice, one value for one-value
// options, no '#' inside a quoted value (CLI11 would cut the value there). Throws fedgan::Error
// "FILE:LINE: ..." on the first fault.
std::vector<ConfigEntry> read_config_file(const std::string& path, const CLI::App& root);

// A CLI11 parse error message, prefixed with "FILE:LINE: key = value: " when it is about an
// option whose value came from the config file (named in the message and absent from argv).
std::string attribute_to_config(const std::string& message, const std::string& path,
                                const std::vector<ConfigEntry>& entries, int argc, char** argv);

}  // namespace fedgan::cli
