// Guards of the round (issue 20): a trimmed mean that would trim nothing is refused at setup and
// warned about in a round where skipped parties leave it trimming nothing.
#include <catch2/catch.hpp>
#include <cmath>

#include "fedgan/federated/aggregation/aggregator.hpp"
#include "fedgan/federated/aggregation/robust.hpp"
#include "fedgan/federated/aggregation/robust_rules.hpp"

using namespace fedgan;
using namespace fedgan::federated;

TEST_CASE("a trimmed mean that trims nothing is refused at setup with the numbers", "[robust]") {
  AggregatorConfig tm;
  tm.name = "trimmed-mean";  // --trim-beta 0.1 by default
  // 8 parties, all in every round: floor(0.8) = 0.
  CHECK_THAT(aggregator_settings_problem(tm, 8, 1.0),
             Catch::Contains("--trim-beta 0.1 would trim floor(beta*m) = floor(0.1*8) = 0 "
                             "updates at each end, m = 8 parties taking part in a round (of 8, "
                             "--participation 1)") &&
                 Catch::Contains("protects against no attacker") &&
                 Catch::Contains("1/m = 1/8, i.e. --trim-beta 0.125") &&
                 Catch::Contains("--aggregator median"));
  CHECK(aggregator_settings_problem(tm, 10, 1.0).empty());  // floor(0.1*10) = 1
  // m is the parties drawn per round: 5 of 10 at --participation 0.5.
  CHECK_THAT(aggregator_settings_problem(tm, 10, 0.5),
             Catch::Contains("floor(0.1*5) = 0") && Catch::Contains("m = 5 parties") &&
                 Catch::Contains("--trim-beta 0.2"));
  tm.trim_beta = 0.125;
  CHECK(aggregator_settings_problem(tm, 8, 1.0).empty());
  tm.trim_beta = 0;  // no trimming at all: the same refusal
  CHECK_THAT(aggregator_settings_problem(tm, 8, 1.0), Catch::Contains("floor(0*8) = 0"));
  // Two parties: no beta below 0.5 trims one.
  tm.trim_beta = 0.4;
  CHECK_THAT(aggregator_settings_problem(tm, 2, 1.0),
             Catch::Contains("with m = 2 no --trim-beta below 0.5 trims one per side") &&
                 Catch::Contains("--aggregator median, or more parties per round"));
  // The suggested beta always trims one (1/m rounded up), even where 1/m is no short decimal.
  CHECK_THAT(trimmed_mean_setup_problem(0.1, 7, 7, 1.0), Catch::Contains("--trim-beta 0.1429"));
  CHECK_THAT(trimmed_mean_setup_problem(0.1, 3, 3, 1.0), Catch::Contains("--trim-beta 0.3334"));
  CHECK(trimmed_count(0.1429, 7) == 1);
  CHECK(trimmed_count(0.3334, 3) == 1);
  for (int m = 3; m <= 200; ++m) {
    const double suggested = std::ceil(1e4 / m) / 1e4;
    CHECK(trimmed_count(suggested, m) == 1);
    CHECK(trimmed_mean_setup_problem(suggested, m, m, 1.0).empty());
  }
  // Other rules are not concerned.
  AggregatorConfig median;
  median.name = "median";
  median.trim_beta = 0;
  CHECK(aggregator_settings_problem(median, 8, 1.0).empty());
}

TEST_CASE("a round whose skipped parties leave the trimmed mean trimming nothing warns",
          "[robust]") {
  // 7 of 8 updates arrived: floor(0.125*7) = 0.
  CHECK_THAT(trimmed_mean_round_warning(0.125, 7, 8, 3),
             Catch::Contains("round 3: --aggregator trimmed-mean --trim-beta 0.125 trimmed "
                             "floor(beta*m) = floor(0.125*7) = 0 updates at each end: only m = 7 "
                             "of the 8 parties drawn sent an update") &&
                 Catch::Contains("1/m = 1/7, i.e. --trim-beta 0.1429"));
  CHECK(trimmed_mean_round_warning(0.125, 8, 8, 3).empty());
  CHECK(trimmed_mean_round_warning(0.25, 7, 8, 3).empty());
  CHECK(trimmed_mean_round_warning(0.125, 0, 8, 3).empty());  // nobody: nothing aggregated
}
