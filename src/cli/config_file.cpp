// The --config file checks (see include/fedgan/cli/config_file.hpp). The reading mirrors
// CLI11 2.1's ConfigBase::from_config (comments, arrays, comma/space splitting, dotted keys),
// so that what is checked here is what CLI11 then applies.
#include "fedgan/cli/config_file.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "fedgan/core/error.hpp"

namespace fedgan::cli {
namespace {

std::string trim(const std::string& s) { return CLI::detail::trim_copy(s); }

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// " (did you mean 'x'?)" for the closest of `names` within two edits, else "".
std::string suggestion(const std::string& word, const std::vector<std::string>& names) {
  std::string best;
  std::size_t best_distance = 3;
  for (const auto& n : names) {
    const auto d = edit_distance(word, n);
    if (d < best_distance) {
      best_distance = d;
      best = n;
    }
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

const CLI::App* find_subcommand(const CLI::App& root, const std::string& name) {
  for (const auto* sub : root.get_subcommands([](const CLI::App*) { return true; }))
    if (sub->get_name() == name) return sub;
  return nullptr;
}

std::vector<std::string> visible_subcommands(const CLI::App& root) {
  std::vector<std::string> names;
  for (const auto* sub : root.get_subcommands([](const CLI::App*) { return true; }))
    if (!sub->get_group().empty()) names.push_back(sub->get_name());
  return names;
}

std::vector<std::string> option_keys(const CLI::App& app) {
  std::vector<std::string> keys;
  for (const auto* opt : app.get_options())
    for (const auto& name : opt->get_lnames()) keys.push_back(name);
  return keys;
}

const CLI::Option* find_option(const CLI::App& app, const std::string& key) {
  if (key.empty()) return nullptr;
  if (const auto* opt = app.get_option_no_throw("--" + key)) return opt;
  if (key.size() == 1) return app.get_option_no_throw("-" + key);
  return nullptr;
}

// The value part of a line with its comment cut off where CLI11 cuts it (at the first '#'),
// refusing a '#' inside quotes, which CLI11 would cut too.
std::string strip_comment(const std::string& value, const std::string& where) {
  char quote = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (quote) {
      if (c == quote) quote = 0;
      if (c == '#')
        throw Error(where +
                    "a '#' inside a quoted value is read as the start of a comment "
                    "(the value would end there); rename the file or directory");
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '#') {
      return trim(value.substr(0, i));
    }
  }
  return value;
}

// "in [train]", or "outside any [section]", for messages about a key.
std::string in_section_text(const std::string& key_section) {
  return key_section.empty() ? "outside any [section]" : "in [" + key_section + "]";
}

// The values CLI11 makes of a value text: [a, b] arrays, else split at commas, else at spaces.
std::vector<std::string> split_values(const std::string& value) {
  std::vector<std::string> items;
  if (value.size() > 1 && value.front() == '[') {
    items = CLI::detail::split_up(value.substr(1, value.size() - 2), ',');
  } else if (value.find(',') != std::string::npos) {
    items = CLI::detail::split_up(value, ',');
  } else if (value.find(' ') != std::string::npos) {
    items = CLI::detail::split_up(value);
  } else {
    items = {value};
  }
  for (auto& item : items) CLI::detail::remove_quotes(item);
  return items;
}

}  // namespace

std::optional<std::string> config_path_from_args(int argc, char** argv) {
  std::optional<std::string> path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg == "--config" && i + 1 < argc) {
      path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      path = arg.substr(9);
    }
  }
  return path;
}

namespace {

// A "[name]" line: the section it opens ("" for [default]). Refuses a header with a trailing
// comment, an array of tables, an unknown subcommand and a section given twice.
std::string read_section_header(const std::string& line, const std::string& where,
                                const CLI::App& root, const std::vector<std::string>& subcommands,
                                std::map<std::string, int>& section_line, int n) {
  // CLI11 takes only a line that ends in ']' for a header: a comment must go on its own line.
  if (line.back() != ']')
    throw Error(where + "'" + line +
                "' is not a [section] header (a comment after it must "
                "go on its own line)");
  if (line.rfind("[[", 0) == 0)
    throw Error(where + line +
                ": arrays of tables are not supported (except [[party]]); write one [section] "
                "per subcommand");
  std::string name = trim(line.substr(1, line.size() - 2));
  if (lower(name) == "default") name.clear();
  if (!name.empty() && !find_subcommand(root, name))
    throw Error(where + "unknown section [" + name + "]" + suggestion(name, subcommands) +
                "; a section names the subcommand its keys belong to: " + join(subcommands, ", "));
  if (section_line.count(name))
    throw Error(where + "[" + name + "] appears a second time (first on line " +
                std::to_string(section_line[name]) + "); write each section once");
  section_line[name] = n;
  return name;
}

// Dotted keys name a subcommand: train.rounds = 3 is rounds in [train]. Leaves the last part
// in `key` and returns the key's section.
std::string key_section_of(std::string& key, const std::string& section,
                           const std::string& written_key, const std::string& where,
                           const CLI::App& root, const std::vector<std::string>& subcommands) {
  std::string key_section = section;
  if (key.find('.') == std::string::npos) return key_section;
  const auto parts = CLI::detail::split(key, '.');
  key = parts.back();
  for (std::size_t i = 0; i + 1 < parts.size(); ++i)
    key_section += (key_section.empty() ? "" : ".") + parts[i];
  if (!find_subcommand(root, key_section))
    throw Error(where + "'" + written_key + "': unknown section '" + key_section + "'" +
                suggestion(key_section, subcommands));
  return key_section;
}

// The option `key` of the section's subcommand, which a config file may set; otherwise an
// error that says where the key belongs, if anywhere.
const CLI::Option& configurable_option(const std::string& key, const std::string& key_section,
                                       const std::string& where, const CLI::App& root,
                                       const std::vector<std::string>& subcommands) {
  const CLI::App& app = key_section.empty() ? root : *find_subcommand(root, key_section);
  const CLI::Option* opt = find_option(app, key);
  if (!opt) {
    std::string hint = suggestion(key, option_keys(app));
    if (key_section.empty()) {
      std::vector<std::string> owners;
      for (const auto& name : subcommands)
        if (find_option(*find_subcommand(root, name), key)) owners.push_back("[" + name + "]");
      if (!owners.empty())
        hint = "; it is an option of " + join(owners, ", ") + ": put it in that section";
    }
    throw Error(where + "unknown key '" + key + "' " + in_section_text(key_section) + hint +
                " (see `fedgan " + (key_section.empty() ? std::string() : key_section + " ") +
                "--help`)");
  }
  if (!opt->get_configurable())
    throw Error(where + "'" + key +
                "' cannot be set in a config file; give it on the "
                "command line");
  return *opt;
}

}  // namespace

PartyTables read_party_tables(const std::string& text, const std::string& path) {
  struct Party {
    int line = 0;
    std::map<std::string, std::pair<std::string, int>> values;  // key -> (value, line)
  };
  std::vector<Party> parties;
  std::istringstream in(text);
  std::string out, raw;
  bool in_party = false;
  int n = 0;
  while (std::getline(in, raw)) {
    ++n;
    const std::string line = trim(raw);
    const std::string where = path + ":" + std::to_string(n) + ": ";
    if (!line.empty() && line[0] == '[') {
      in_party = trim(strip_comment(line, where)) == "[[party]]";
      if (in_party) {
        parties.push_back({n, {}});
        out += "\n";
        continue;
      }
    } else if (in_party && !line.empty() && line[0] != '#' && line[0] != ';') {
      const auto eq = line.find('=');
      if (eq == std::string::npos) throw Error(where + "'" + line + "' is not of the form key = value");
      const std::string key = trim(line.substr(0, eq));
      std::string value = strip_comment(trim(line.substr(eq + 1)), where);
      CLI::detail::remove_quotes(value);
      if (key != "id" && key != "width-ratio" && key != "discriminator" && key != "speed")
        throw Error(where + "unknown key '" + key + "' in [[party]] (expected id, width-ratio, "
                    "discriminator, speed)" +
                    suggestion(key, {"id", "width-ratio", "discriminator", "speed"}));
      auto& values = parties.back().values;
      if (values.count(key))
        throw Error(where + "'" + key + "' is set a second time in this [[party]]");
      values[key] = {value, n};
      out += "\n";
      continue;
    }
    out += raw + "\n";
  }
  PartyTables tables;
  tables.text = out;
  if (parties.empty()) return tables;
  tables.line = parties.front().line;
  // Ids 0..n-1, each once: the lists are in id order.
  std::vector<const Party*> by_id(parties.size(), nullptr);
  for (const auto& p : parties) {
    const std::string where = path + ":" + std::to_string(p.line) + ": [[party]]: ";
    const auto it = p.values.find("id");
    if (it == p.values.end()) throw Error(where + "no id (give id = 0, 1, ... for each party)");
    std::size_t used = 0;
    long id = -1;
    try {
      id = std::stol(it->second.first, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != it->second.first.size() || id < 0 || id >= static_cast<long>(parties.size()))
      throw Error(where + "id = " + it->second.first + ": the " +
                  std::to_string(parties.size()) + " [[party]] tables must have the ids 0.." +
                  std::to_string(parties.size() - 1));
    if (by_id[static_cast<std::size_t>(id)])
      throw Error(where + "id " + std::to_string(id) + " is given twice (first on line " +
                  std::to_string(by_id[static_cast<std::size_t>(id)]->line) + ")");
    by_id[static_cast<std::size_t>(id)] = &p;
  }
  for (const char* key : {"width-ratio", "discriminator"}) {
    std::size_t given = 0;
    for (const auto& p : parties) given += p.values.count(key);
    if (given == 0) continue;
    std::string list;
    for (const Party* p : by_id) {
      const auto it = p->values.find(key);
      if (it == p->values.end())
        throw Error(path + ":" + std::to_string(p->line) + ": [[party]] " + p->values.at("id").first +
                    " has no " + key + ", but " + std::to_string(given) +
                    " other parties have one (give every party its " + key + ", or none)");
      if (std::string(key) == "width-ratio") {
        std::size_t used = 0;
        try {
          (void)std::stod(it->second.first, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != it->second.first.size())
          throw Error(path + ":" + std::to_string(it->second.second) + ": width-ratio = " +
                      it->second.first + " is not a number (expected a ratio in (0, 1])");
        list += (list.empty() ? "" : ",") + it->second.first;
      } else {
        list += (list.empty() ? "" : ";") + it->second.first;
      }
    }
    tables.options.push_back(
        {std::string(key) == "width-ratio" ? "--width-ratios" : "--party-discriminators", list});
  }
  // A simulated slowdown (--party-speed) for the parties that give one; the others run at 1.
  std::string speeds;
  for (const Party* p : by_id)
    if (const auto it = p->values.find("speed"); it != p->values.end())
      speeds += (speeds.empty() ? "" : ",") + p->values.at("id").first + "=" + it->second.first;
  if (!speeds.empty()) tables.options.push_back({"--party-speed", speeds});
  return tables;
}

std::vector<CLI::ConfigItem> PartyTableConfig::from_config(std::istream& input) const {
  std::stringstream text;
  text << input.rdbuf();
  std::istringstream blanked(read_party_tables(text.str(), "--config").text);
  return CLI::ConfigTOML::from_config(blanked);
}

std::vector<ConfigEntry> read_config_file(
    const std::string& path, const CLI::App& root,
    std::vector<std::pair<std::string, std::string>>* party_options) {
  std::ifstream file(path);
  if (!file) throw Error(path + ": cannot read the --config file (no such file or not readable)");
  std::stringstream whole;
  whole << file.rdbuf();
  const auto tables = read_party_tables(whole.str(), path);
  if (party_options) *party_options = tables.options;
  std::istringstream in(tables.text);
  const auto subcommands = visible_subcommands(root);
  std::vector<ConfigEntry> entries;
  std::map<std::string, int> section_line;                      // section -> header line
  std::map<std::pair<std::string, std::string>, int> key_line;  // (section, key) -> line
  std::string section;                                          // "" before any [section]
  std::string raw;
  int n = 0;
  while (std::getline(in, raw)) {
    ++n;
    const std::string where = path + ":" + std::to_string(n) + ": ";
    std::string line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      section = read_section_header(line, where, root, subcommands, section_line, n);
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      throw Error(where + "'" + line + "' is not of the form key = value");
    std::string key = trim(line.substr(0, eq));
    std::string value = strip_comment(trim(line.substr(eq + 1)), where);
    // An array may go on over several lines, as CLI11 reads it.
    while (value.size() > 1 && value.front() == '[' && value.back() != ']') {
      std::string more;
      if (!std::getline(in, more))
        throw Error(where + "the array of '" + key + "' is not closed with ']'");
      ++n;
      value += strip_comment(trim(more), path + ":" + std::to_string(n) + ": ");
    }
    const std::string key_section =
        key_section_of(key, section, trim(line.substr(0, eq)), where, root, subcommands);
    CLI::detail::remove_quotes(key);
    const CLI::Option& opt = configurable_option(key, key_section, where, root, subcommands);
    const auto values = split_values(value);
    if (opt.get_items_expected_max() <= 1 && values.size() != 1)
      throw Error(
          where + "'" + key + "' takes one value, but the file gives " +
          std::to_string(values.size()) + " (" + value + ")" +
          (values.size() > 1 ? "; for a text with commas or spaces, quote it: \"a, b\"" : ""));
    const auto id = std::make_pair(key_section, key);
    if (key_line.count(id))
      throw Error(where + "'" + key + "' is set a second time " + in_section_text(key_section) +
                  " (first on line " + std::to_string(key_line[id]) + "); give each key once");
    key_line[id] = n;
    entries.push_back({key_section, key, values, n, trim(raw)});
  }
  for (const auto& [option, value] : tables.options)
    for (const auto& e : entries)
      if (e.section == "train" && "--" + e.key == option)
        throw Error(path + ":" + std::to_string(e.line) + ": '" + e.key +
                    "' is given both here and by the [[party]] tables (line " +
                    std::to_string(tables.line) + "); give it once");
  return entries;
}

std::string attribute_to_config(const std::string& message, const std::string& path,
                                const std::vector<ConfigEntry>& entries, int argc, char** argv) {
  std::set<std::string> given, words;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    words.insert(arg);
    if (arg.rfind("--", 0) == 0) given.insert(arg.substr(2, arg.find('=') - 2));
  }
  auto names_option = [&](const std::string& key) {
    const std::string flag = "--" + key;
    for (auto at = message.find(flag); at != std::string::npos; at = message.find(flag, at + 1)) {
      const auto end = at + flag.size();
      if (end == message.size() || !(std::isalnum(static_cast<unsigned char>(message[end])) ||
                                     message[end] == '-' || message[end] == '_'))
        return true;
    }
    return false;
  };
  const ConfigEntry* match = nullptr;
  for (const auto& e : entries) {
    if (given.count(e.key) || !names_option(e.key)) continue;
    // Prefer the entry of the subcommand being run when several sections set the key.
    if (!match || (e.section.empty() || words.count(e.section))) match = &e;
  }
  if (!match) return message;
  return path + ":" + std::to_string(match->line) + ": " + match->text + ": " + message;
}

}  // namespace fedgan::cli
