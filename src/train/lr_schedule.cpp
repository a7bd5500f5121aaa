// Learning-rate schedules (see include/fedgan/train/lr_schedule.hpp).
#include "fedgan/train/lr_schedule.hpp"

#include <algorithm>
#include <cmath>

#include "fedgan/core/error.hpp"

namespace fedgan::train {

LrSchedule parse_lr_schedule(const std::string& text) {
  if (text == "constant") return LrSchedule::Constant;
  if (text == "cosine") return LrSchedule::Cosine;
  if (text == "linear") return LrSchedule::Linear;
  throw Error("--lr-schedule: unknown schedule '" + text +
              "' (expected constant, cosine or linear)");
}

std::string to_string(LrSchedule schedule) {
  switch (schedule) {
    case LrSchedule::Cosine:
      return "cosine";
    case LrSchedule::Linear:
      return "linear";
    case LrSchedule::Constant:
      break;
  }
  return "constant";
}

double lr_factor(LrSchedule schedule, int round, int rounds, double final_ratio) {
  if (schedule == LrSchedule::Constant || rounds <= 1) return 1.0;
  // Progress 0 at round 1, 1 at the last round.
  const double t =
      std::clamp(static_cast<double>(round - 1) / static_cast<double>(rounds - 1), 0.0, 1.0);
  const double shape = schedule == LrSchedule::Cosine ? 0.5 * (1.0 + std::cos(M_PI * t)) : 1.0 - t;
  return final_ratio + (1.0 - final_ratio) * shape;
}

}  // namespace fedgan::train
