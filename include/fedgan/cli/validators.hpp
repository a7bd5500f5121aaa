// Option validators with readable messages. CLI11 2.1's PositiveNumber and NonNegativeNumber
// print their upper bound (DBL_MAX) with 309 digits, its Range prints doubles as "0.000000",
// and all of them let NaN through; these say "(0, 1]" or "a positive number" and refuse NaN/inf.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "fedgan/core/choice.hpp"
#include "fedgan/core/error.hpp"

namespace fedgan::cli {

// Whether a range includes its end point.
enum class End { Closed, Open };

// A finite number in the interval from lo to hi, e.g. in_range(0, 1, End::Open) is (0, 1].
CLI::Validator in_range(double lo, double hi, End lo_end = End::Closed, End hi_end = End::Closed);
// A finite number > 0.
CLI::Validator positive();
// A finite number >= 0.
CLI::Validator non_negative();
// The same for factors applied to float32 tensors (learning rates, loss weights): also at most
// FLT_MAX, since LibTorch refuses to convert a larger scalar to float (an "unexpected error").
CLI::Validator positive_float();
CLI::Validator non_negative_float();

// A validator from a parser that throws fedgan::Error "OPTION: message" (e.g. --diffaug's
// AugmentPolicy::parse): the message without the option name (CLI11 puts it in front).
template <class Parse>
CLI::Validator parsed_by(Parse parse, const std::string& option, const std::string& what) {
  return CLI::Validator(
      [parse, option](std::string& input) -> std::string {
        try {
          parse(input);
          return {};
        } catch (const Error& e) {
          std::string m = e.what();
          if (m.rfind(option + ": ", 0) == 0) m = m.substr(option.size() + 2);
          return m;
        }
      },
      what);
}

// "(0, 1]", "[1, 4096]": how the ranges print in messages and --help.
std::string interval_text(double lo, double hi, End lo_end, End hi_end);

// A named choice (core/choice.hpp): one of the table's names, checked by CLI::IsMember (--help
// shows {a,b,c}; an unknown name: "x not in {a,b,c}").
template <class Entry>
CLI::Validator one_of(const ChoiceTable<Entry>& table) {
  return CLI::IsMember(table.names());
}

// The help of a choice option from its table: "INTRO: a (help of a); b; c (help of c)", then
// "; NOTE" when given.
template <class Entry>
std::string choice_help(const std::string& intro, const ChoiceTable<Entry>& table,
                        const std::string& note = "") {
  std::string list;
  for (const auto& e : table) {
    if (e.help == nullptr) continue;  // a hidden alias
    list += (list.empty() ? "" : "; ") + std::string(e.name);
    if (*e.help != '\0') list += std::string(" (") + e.help + ")";
  }
  return (intro.empty() ? list : intro + ": " + list) + (note.empty() ? "" : "; " + note);
}

// Binds `text` to the table's option on `sub`: help from the table, the default shown, checked
// with one_of. The caller parses the text into the value (table.parse(text).value).
template <class Entry>
CLI::Option* add_choice(CLI::App& sub, std::string& text, const ChoiceTable<Entry>& table,
                        const std::string& intro, const std::string& note = "") {
  return sub.add_option(table.option(), text, choice_help(intro, table, note))
      ->capture_default_str()
      ->check(one_of(table));
}

}  // namespace fedgan::cli
