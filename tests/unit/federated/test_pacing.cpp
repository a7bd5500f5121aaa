// Pacing: party speeds, compute-aware steps, staleness weights and the asynchronous replay's
// schedule (federated/round/pacing.hpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "fedgan/core/error.hpp"
#include "fedgan/federated/round/pacing.hpp"

using namespace fedgan;
using namespace fedgan::federated;

TEST_CASE("staleness weights", "[pacing]") {
  CHECK(staleness_weight(Staleness::None, 7) == 1.0);
  CHECK(staleness_weight(Staleness::Sqrt, 0) == 1.0);
  CHECK(staleness_weight(Staleness::Sqrt, 3) == Approx(0.5).epsilon(1e-15));
  CHECK(staleness_weight(Staleness::Sqrt, 8) == Approx(1.0 / 3.0).epsilon(1e-15));
  CHECK(staleness_weight(Staleness::Inverse, 4) == Approx(0.2).epsilon(1e-15));
  CHECK_THROWS_AS(staleness_weight(Staleness::Sqrt, -1), Error);
  CHECK(staleness_rules().parse("sqrt").value == Staleness::Sqrt);
  CHECK_THROWS_WITH(staleness_rules().parse("linear"), Catch::Contains("--staleness"));
}

TEST_CASE("party speeds (--party-speed) parse, and bad ones are refused", "[pacing]") {
  const auto s = parse_party_speeds("0=4,3=inf,2=0.5");
  REQUIRE(s.size() == 3);
  CHECK(s.at(0) == 4.0);
  CHECK(std::isinf(s.at(3)));
  CHECK(s.at(2) == 0.5);
  CHECK(parse_party_speeds("").empty());
  CHECK(parse_party_speeds(format_party_speeds(s)) == s);
  for (const char* bad : {"0", "0=", "=4", "a=4", "-1=2", "0=0", "0=-2", "0=nan", "0=4,0=2", "0=4,",
                          "0=1e999"})
    CHECK_THROWS_WITH(parse_party_speeds(bad), Catch::Contains("--party-speed"));
}

TEST_CASE("pacing settings against the federation", "[pacing]") {
  PacingConfig c;
  CHECK(pacing_problem(c, 4).empty());
  c.speed = {{5, 2.0}};
  CHECK_THAT(pacing_problem(c, 4), Catch::Contains("party 5 is not one of the 4 parties"));
  c.speed = {{1, std::numeric_limits<double>::infinity()}};
  CHECK_THAT(pacing_problem(c, 4), Catch::Contains("waits for every party"));
  c.round_time_budget = 1;
  CHECK(pacing_problem(c, 4).empty());
  c.round_time_budget = 0;
  c.async_buffer = 3;
  CHECK(pacing_problem(c, 4).empty());
  c.async_buffer = 4;
  CHECK_THAT(pacing_problem(c, 4), Catch::Contains("only 3 parties ever finish"));
  c.async_buffer = 5;
  CHECK_THAT(pacing_problem(c, 4), Catch::Contains("larger than the 4 parties"));
}

TEST_CASE("compute-aware steps follow the step time", "[pacing]") {
  CHECK(budget_steps(1.0, 0.01) == 100);
  CHECK(budget_steps(1.0, 0.04) == 25);
  CHECK(budget_steps(1.0, 0.3) == 3);
  CHECK(budget_steps(1.0, 2.0) == 0);  // cannot finish one step: sits out
  CHECK(budget_steps(1.0, std::numeric_limits<double>::infinity()) == 0);
  CHECK(budget_steps(1.0, 0.0) == 0);
}

TEST_CASE("the asynchronous schedule: arrivals, staleness and pulls", "[pacing]") {
  // Durations 4, 16, 8, 4 (4 steps at speeds 1, 4, 2, 1); buffer of 2.
  AsyncSchedule s(2, {4, 4, 4, 4}, {1, 4, 2, 1});
  auto b1 = s.next_buffer();  // t=4: parties 0 and 3 from version 0; they pull version 1
  REQUIRE(b1.size() == 2);
  CHECK((b1[0].party == 0 && b1[1].party == 3));
  CHECK((b1[0].start_version == 0 && b1[1].start_version == 0));
  CHECK(b1[1].time == 4);
  CHECK(s.version() == 1);
  CHECK(s.versions_in_flight() == std::vector<std::int64_t>{0, 1});
  auto b2 = s.next_buffer();  // t=8: party 0 (v1), party 2 (v0, the first session); 3 waits
  CHECK((b2[0].party == 0 && b2[0].start_version == 1 && b2[0].session == 2));
  CHECK((b2[1].party == 2 && b2[1].start_version == 0 && b2[1].session == 1));
  auto b3 = s.next_buffer();  // party 3 arrived at t=8 too, from v1; then party 0 at t=12 (v2)
  CHECK((b3[0].party == 3 && b3[0].start_version == 1 && b3[0].time == 8));
  CHECK((b3[1].party == 0 && b3[1].start_version == 2 && b3[1].time == 12));
  // Party 1 (speed 4) arrives at t=16 from version 0: four versions stale by then.
  bool seen = false;
  for (int v = 4; v <= 6 && !seen; ++v)
    for (const auto& a : s.next_buffer())
      if (a.party == 1) {
        seen = true;
        CHECK(a.start_version == 0);
        CHECK(a.time == 16);
      }
  CHECK(seen);
}

TEST_CASE("the asynchronous schedule: K = all parties of equal speed is synchronous", "[pacing]") {
  AsyncSchedule s(3, {5, 5, 5}, {1, 1, 1});
  for (int v = 1; v <= 4; ++v) {
    const auto b = s.next_buffer();
    REQUIRE(b.size() == 3);
    for (int k = 0; k < 3; ++k) {
      CHECK(b[static_cast<std::size_t>(k)].party == k);
      CHECK(b[static_cast<std::size_t>(k)].start_version == v - 1);
      CHECK(b[static_cast<std::size_t>(k)].session == v);
    }
  }
}

TEST_CASE("the asynchronous schedule: a hung party never arrives", "[pacing]") {
  const double inf = std::numeric_limits<double>::infinity();
  AsyncSchedule s(2, {3, 3, 3}, {1, inf, 2});
  for (int v = 1; v <= 10; ++v)
    for (const auto& a : s.next_buffer()) CHECK(a.party != 1);
  // Its start model is not kept: nothing waits for it.
  for (auto v : s.versions_in_flight()) CHECK(v > 0);
  AsyncSchedule none(1, {3}, {inf});
  CHECK_THROWS_WITH(none.next_buffer(), Catch::Contains("no party can finish"));
}

TEST_CASE("the asynchronous schedule is a pure function of its settings", "[pacing]") {
  // Replaying to any version gives the same next buffer (what resuming relies on).
  AsyncSchedule a(2, {4, 7, 3, 5}, {1, 4, 2.5, 1});
  std::vector<std::vector<Arrival>> all;
  for (int v = 0; v < 12; ++v) all.push_back(a.next_buffer());
  AsyncSchedule b(2, {4, 7, 3, 5}, {1, 4, 2.5, 1});
  for (int v = 0; v < 7; ++v) b.next_buffer();
  for (int v = 7; v < 12; ++v) {
    const auto next = b.next_buffer();
    REQUIRE(next.size() == all[static_cast<std::size_t>(v)].size());
    for (std::size_t i = 0; i < next.size(); ++i) {
      CHECK(next[i].party == all[static_cast<std::size_t>(v)][i].party);
      CHECK(next[i].start_version == all[static_cast<std::size_t>(v)][i].start_version);
      CHECK(next[i].time == all[static_cast<std::size_t>(v)][i].time);
    }
  }
}

TEST_CASE("balanced arrival weights: a party's session length over the mean", "[pacing]") {
  const double inf = std::numeric_limits<double>::infinity();
  const auto f = balance_factors({4, 4, 4, 4}, {1, 4, 2, 1});  // lengths 4, 16, 8, 4; mean 8
  REQUIRE(f.size() == 4);
  CHECK(f[0] == 0.5);
  CHECK(f[1] == 2.0);
  CHECK(f[2] == 1.0);
  CHECK(f[3] == 0.5);
  const auto g = balance_factors({3, 3, 6}, {1, inf, 1});  // the hung party is left out
  CHECK(g[0] == Approx(2.0 / 3.0));
  CHECK(g[1] == 0.0);
  CHECK(g[2] == Approx(4.0 / 3.0));
  CHECK(arrival_weightings().parse("balanced").value == ArrivalWeighting::Balanced);
}
