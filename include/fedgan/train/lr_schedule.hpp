// Learning-rate schedules over federated rounds: the local Adam learning rates of round t are
// the configured ones times factor(t), a decay from 1 in round 1 to `final_ratio` in the last
// round (cosine as in Loshchilov & Hutter 2017, without restarts; or linear).
#pragma once

#include <string>

#include "fedgan/core/choice.hpp"

namespace fedgan::train {

enum class LrSchedule { Constant, Cosine, Linear };

// --lr-schedule: constant | cosine | linear.
const ChoiceTable<Choice<LrSchedule>>& lr_schedules();
// fedgan::Error naming the accepted words for an unknown one.
LrSchedule parse_lr_schedule(const std::string& text);
std::string to_string(LrSchedule schedule);

// The factor of round `round` (1-based) of `rounds`: 1 for constant; else 1 at round 1 and
// `final_ratio` at round `rounds` (rounds past the end keep final_ratio).
double lr_factor(LrSchedule schedule, int round, int rounds, double final_ratio);

}  // namespace fedgan::train
