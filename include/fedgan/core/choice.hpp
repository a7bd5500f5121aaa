// Named choices: the words of an option such as --aggregator and the typed values they stand
// for, in one table per choice, kept by the module that owns the concept (docs/DESIGN.md,
// "Extending a round"). The CLI builds the option's validator and help text from the table and
// parses the word once; config files keep the word; code below the CLI sees only the value.
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "fedgan/core/error.hpp"

namespace fedgan {

// One entry: the value, its name (as the command line and config files spell it) and a phrase
// for --help ("" when the name says it all; nullptr: a hidden alias, accepted but not listed).
template <class Value>
struct Choice {
  Value value;
  const char* name;
  const char* help;
};

// A view of a static array of entries: Choice<V>, or a module's own entry type whose first
// members are the same three (and then e.g. a factory). The first entry of a value is its name;
// later entries of the same value are aliases.
template <class Entry>
class ChoiceTable {
 public:
  using Value = std::remove_cv_t<decltype(Entry::value)>;

  // `option` names the option in messages ("--aggregator"), `what` the kind of thing
  // ("aggregator"): "--aggregator: unknown aggregator 'x' (expected fedavg, median or krum)".
  template <std::size_t N>
  constexpr ChoiceTable(const Entry (&entries)[N], const char* option, const char* what)
      : m_entries(entries), m_size(N), m_option(option), m_what(what) {}

  const Entry* begin() const { return m_entries; }
  const Entry* end() const { return m_entries + m_size; }
  const char* option() const { return m_option; }
  const char* what() const { return m_what; }

  // The listed names, in the table's order (what the option accepts; hidden aliases left out).
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : *this)
      if (e.help != nullptr) out.emplace_back(e.name);
    return out;
  }

  // The entry named `name` (aliases included), or nullptr.
  const Entry* find(const std::string& name) const {
    for (const auto& e : *this)
      if (name == e.name) return &e;
    return nullptr;
  }

  // The entry of `value` (its first).
  const Entry& of(Value value) const {
    for (const auto& e : *this)
      if (e.value == value) return e;
    throw Error(std::string(m_option) + ": a value without a name in the table of " + m_what);
  }
  std::string name(Value value) const { return of(value).name; }

  // The entry named `text`; fedgan::Error naming the option and the names otherwise.
  const Entry& parse(const std::string& text) const {
    if (const Entry* e = find(text)) return *e;
    throw Error(std::string(m_option) + ": unknown " + m_what + " '" + text + "' (expected " +
                expected() + ")");
  }

  // "a, b or c": the listed names for a message.
  std::string expected() const {
    const auto all = names();
    std::string out;
    for (std::size_t i = 0; i < all.size(); ++i)
      out += (i == 0 ? "" : i + 1 == all.size() ? " or " : ", ") + all[i];
    return out;
  }

 private:
  const Entry* m_entries;
  std::size_t m_size;
  const char* m_option;
  const char* m_what;
};

}  // namespace fedgan
