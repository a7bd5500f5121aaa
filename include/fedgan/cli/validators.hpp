// Option validators with readable messages. CLI11 2.1's PositiveNumber and NonNegativeNumber
// print their upper bound (DBL_MAX) with 309 digits, its Range prints doubles as "0.000000",
// and all of them let NaN through; these say "(0, 1]" or "a positive number" and refuse NaN/inf.
#pragma once

#include <CLI/CLI.hpp>

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

// "(0, 1]", "[1, 4096]": how the ranges print in messages and --help.
std::string interval_text(double lo, double hi, End lo_end, End hi_end);

}  // namespace fedgan::cli
