// Readable option validators (see include/fedgan/cli/validators.hpp).
#include "fedgan/cli/validators.hpp"

#include <cfloat>
#include <cmath>
#include <sstream>

namespace fedgan::cli {
namespace {

std::string number_text(double v) {
  std::ostringstream s;
  s << v;  // %g: 1e-09, 0.5, 4096
  return s.str();
}

// The option's text as a finite double; an empty string when it is one, else the complaint.
std::string parse_finite(const std::string& input, double& value) {
  if (!CLI::detail::lexical_cast(input, value)) return "'" + input + "' is not a number";
  if (!std::isfinite(value)) return "'" + input + "' is not a finite number";
  return {};
}

}  // namespace

std::string interval_text(double lo, double hi, End lo_end, End hi_end) {
  return std::string(lo_end == End::Open ? "(" : "[") + number_text(lo) + ", " + number_text(hi) +
         (hi_end == End::Open ? ")" : "]");
}

CLI::Validator in_range(double lo, double hi, End lo_end, End hi_end) {
  const std::string text = interval_text(lo, hi, lo_end, hi_end);
  return CLI::Validator(
      [=](std::string& input) -> std::string {
        double v = 0;
        if (auto bad = parse_finite(input, v); !bad.empty())
          return bad + "; expected one in " + text;
        const bool above = lo_end == End::Open ? v > lo : v >= lo;
        const bool below = hi_end == End::Open ? v < hi : v <= hi;
        return above && below ? std::string() : input + " is outside " + text;
      },
      "in " + text);
}

CLI::Validator positive() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        double v = 0;
        if (auto bad = parse_finite(input, v); !bad.empty()) return bad + "; expected one > 0";
        return v > 0 ? std::string() : input + " is not > 0 (expected a positive number)";
      },
      "> 0");
}

CLI::Validator positive_float() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        double v = 0;
        if (auto bad = parse_finite(input, v); !bad.empty()) return bad + "; expected one > 0";
        if (!(v > 0)) return input + " is not > 0 (expected a positive number)";
        return v <= FLT_MAX
                   ? std::string()
                   : input + " exceeds the float32 range (at most " + number_text(FLT_MAX) + ")";
      },
      "> 0");
}

CLI::Validator non_negative_float() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        double v = 0;
        if (auto bad = parse_finite(input, v); !bad.empty()) return bad + "; expected one >= 0";
        if (!(v >= 0)) return input + " is negative (expected a number >= 0)";
        return v <= FLT_MAX
                   ? std::string()
                   : input + " exceeds the float32 range (at most " + number_text(FLT_MAX) + ")";
      },
      ">= 0");
}

CLI::Validator non_negative() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        double v = 0;
        if (auto bad = parse_finite(input, v); !bad.empty()) return bad + "; expected one >= 0";
        return v >= 0 ? std::string() : input + " is negative (expected a number >= 0)";
      },
      ">= 0");
}

}  // namespace fedgan::cli
