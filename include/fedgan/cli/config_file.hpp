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

// Per-party settings as TOML arrays of tables, one `[[party]]` per party:
//   [[party]]
//   id = 0                           # party ids 0..n-1, each once, in any order
//   width-ratio = 0.5                # → train --width-ratios, in id order
//   discriminator = "dw=16,dn=spectral"   # → train --party-discriminators, joined by ';'
// `text` is the file with every [[party]] block blanked (line numbers kept); `options` the train
// options they give ({"--width-ratios", "1,0.5,…"}, …), which the command line's own value of
// the option overrides. A key that some parties give must be given by all. fedgan::Error
// "PATH:LINE: ..." for an unknown key, a missing or repeated id, ids that are not 0..n-1 or a
// value that is not a number.
struct PartyTables {
  std::string text;
  std::vector<std::pair<std::string, std::string>> options;
  int line = 0;  // the first [[party]]'s
};
PartyTables read_party_tables(const std::string& text, const std::string& path);

// CLI11's TOML reader with the [[party]] blocks blanked (read_party_tables).
class PartyTableConfig : public CLI::ConfigTOML {
 public:
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
};

// The file named by --config FILE or --config=FILE in argv, if any.
std::optional<std::string> config_path_from_args(int argc, char** argv);

// Reads `path` as CLI11 would and checks it against the options of `root` and its
// subcommands: known sections and keys, no key or section twice, one value for one-value
// options, no '#' inside a quoted value (CLI11 would cut the value there). Throws fedgan::Error
// "FILE:LINE: ..." on the first fault.
// `party_options` (optional) receives the train options of the file's [[party]] tables.
std::vector<ConfigEntry> read_config_file(
    const std::string& path, const CLI::App& root,
    std::vector<std::pair<std::string, std::string>>* party_options = nullptr);

// A CLI11 parse error message, prefixed with "FILE:LINE: key = value: " when it is about an
// option whose value came from the config file (named in the message and absent from argv).
std::string attribute_to_config(const std::string& message, const std::string& path,
                                const std::vector<ConfigEntry>& entries, int argc, char** argv);

}  // namespace fedgan::cli
