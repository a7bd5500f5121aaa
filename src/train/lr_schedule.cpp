// Learning-rate schedules (see include/fedgan/train/lr_schedule.hpp).
#include "fedgan/train/lr_schedule.hpp"

#include <algorithm>
#include <cmath>

#include "fedgan/core/error.hpp"

namespace fedgan::train {

const ChoiceTable<Choice<LrSchedule>>& lr_schedules() {
  static const Choice<LrSchedule> entries[] = {
      {LrSchedule::Constant, "constant", ""},
      {LrSchedule::Cosine, "cosine",
       "decay from --lr-g/--lr-d in round 1 to --lr-final times them "
       "in the last round, Loshchilov & Hutter 2017"},
      {LrSchedule::Linear, "linear", "the same decay on a straight line"},
  };
  static const ChoiceTable<Choice<LrSchedule>> table(entries, "--lr-schedule", "schedule");
  return table;
}

LrSchedule parse_lr_schedule(const std::string& text) { return lr_schedules().parse(text).value; }
std::string to_string(LrSchedule schedule) { return lr_schedules().name(schedule); }

double lr_factor(LrSchedule schedule, int round, int rounds, double final_ratio) {
  if (schedule == LrSchedule::Constant || rounds <= 1) return 1.0;
  // Progress 0 at round 1, 1 at the last round.
  const double t =
      std::clamp(static_cast<double>(round - 1) / static_cast<double>(rounds - 1), 0.0, 1.0);
  const double shape = schedule == LrSchedule::Cosine ? 0.5 * (1.0 + std::cos(M_PI * t)) : 1.0 - t;
  return final_ratio + (1.0 - final_ratio) * shape;
}

}  // namespace fedgan::train
