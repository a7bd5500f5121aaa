// The federation controller: --auto parsing, each rule firing exactly when its signal persists
// `patience` rounds (or evaluations) and within its limits, quarantine and its floor, and exact
// resume from state().
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "fedgan/core/error.hpp"
#include "fedgan/federated/adapt/controller.hpp"

using namespace fedgan::federated::adapt;
using Catch::Contains;

namespace {

constexpr double kCtlNoFid = std::numeric_limits<double>::quiet_NaN();

// A round of parties 0..n-1 with these update norms.
RoundSignals ctl_round(int round, const std::vector<double>& norms, double mean_norm = 1.0,
                       double fid = kCtlNoFid) {
  RoundSignals s;
  s.round = round;
  s.fid = fid;
  s.mean_update_norm = mean_norm;
  for (std::size_t i = 0; i < norms.size(); ++i)
    s.parties.push_back({static_cast<int>(i), 10, norms[i], std::isfinite(norms[i])});
  return s;
}

// A round whose agreement mean_norm / mean(norms) is exactly `agreement` (norms all 2).
RoundSignals ctl_agreeing(int round, double agreement, int parties = 4) {
  return ctl_round(round, std::vector<double>(static_cast<std::size_t>(parties), 2.0),
                   2.0 * agreement);
}

RoundSignals ctl_evaluated(int round, double fid) { return ctl_round(round, {1, 1, 1}, 0.5, fid); }

ControllerConfig ctl_config(std::vector<Rule> rules, int patience = 2) {
  ControllerConfig c;
  c.rules = std::move(rules);
  c.patience = patience;
  return c;
}

// Rule lists as their names (Catch prints strings, not enums, on a failure).
std::string ctl_names(const std::vector<Rule>& rules) {
  std::string out;
  for (Rule r : rules) out += (out.empty() ? "" : ",") + controller_rules().name(r);
  return out;
}

std::string ctl_text(const std::vector<Decision>& decisions) {
  std::string out;
  for (const auto& d : decisions)
    out += std::to_string(d.round) + "|" + d.rule + "|" + d.signal + "|" + d.action + "\n";
  return out;
}

std::string ctl_text(const Settings& s) {
  std::string out = std::to_string(s.local_steps_scale) + " " + std::to_string(s.server_lr_scale) +
                    " " + std::to_string(s.participation) + " [";
  for (int p : s.excluded) out += std::to_string(p) + " ";
  return out + "]";
}

}  // namespace

TEST_CASE("controller rules (--auto): all, off and lists parse, bad words are refused", "[controller]") {
  CHECK(ctl_names(parse_controller_rules("all").rules) ==
        "quarantine,steps,server-lr,participation");
  CHECK(parse_controller_rules("all").rules.front() == Rule::Quarantine);
  CHECK(parse_controller_rules("off").rules.empty());
  // Table order whatever the order of the words.
  CHECK(ctl_names(parse_controller_rules("server-lr,steps").rules) == "steps,server-lr");
  CHECK(ctl_names(parse_controller_rules("participation").rules) == "participation");
  REQUIRE_THROWS_WITH(parse_controller_rules("steps,lr"),
                      Contains("--auto") && Contains("'lr'") &&
                          Contains("quarantine, steps, server-lr or participation"));
  REQUIRE_THROWS_WITH(parse_controller_rules("steps,quarantine,steps"),
                      Contains("--auto") && Contains("'steps' given twice"));
  REQUIRE_THROWS_WITH(parse_controller_rules(""), Contains("--auto"));
  REQUIRE_THROWS_WITH(parse_controller_rules("steps,"), Contains("--auto"));
  REQUIRE_THROWS_WITH(parse_controller_rules("all,steps"), Contains("--auto"));
  CHECK(controller_rules().name(Rule::ServerLr) == "server-lr");
}

TEST_CASE("a controller without rules is off and decides nothing", "[controller]") {
  Controller off(ControllerConfig{}, 5, 0.5);
  CHECK_FALSE(off.enabled());
  CHECK(off.observe(ctl_round(1, {1, 1, 1, 1, 100}, 0.01, 10)).empty());
  CHECK(off.observe(ctl_round(2, {1, 1, 1, 1, NAN}, 0.01, 20)).empty());
  CHECK(off.observe(ctl_round(3, {1, 1, 1, 1, NAN}, 0.01, 30)).empty());
  CHECK(ctl_text(off.settings()) == ctl_text(Settings{1, 1, 0.5, {}}));
}

TEST_CASE("steps: low agreement halves local steps after patience rounds, down to the minimum",
          "[controller]") {
  Controller c(ctl_config({Rule::LocalSteps}, 3), 4, 1.0);
  CHECK(c.observe(ctl_agreeing(1, 0.1)).empty());
  CHECK(c.observe(ctl_agreeing(2, 0.1)).empty());
  // A round in between breaks the streak.
  CHECK(c.observe(ctl_agreeing(3, 0.5)).empty());
  CHECK(c.observe(ctl_agreeing(4, 0.1)).empty());
  CHECK(c.observe(ctl_agreeing(5, 0.1)).empty());
  CHECK(c.settings().local_steps_scale == 1.0);
  auto d = c.observe(ctl_agreeing(6, 0.2));
  REQUIRE(d.size() == 1);
  CHECK(d[0].round == 6);
  CHECK(d[0].rule == "steps");
  CHECK(d[0].signal == "agreement 0.2 < 0.3 for 3 consecutive rounds");
  CHECK(d[0].action == "local steps scale 1 -> 0.5");
  CHECK(c.settings().local_steps_scale == 0.5);
  // The change reset the streak: three more rounds for the next halving.
  CHECK(c.observe(ctl_agreeing(7, 0.1)).empty());
  CHECK(c.observe(ctl_agreeing(8, 0.1)).empty());
  REQUIRE(c.observe(ctl_agreeing(9, 0.1)).size() == 1);
  CHECK(c.settings().local_steps_scale == 0.25);
  // At steps_min_scale: nothing more changes.
  for (int r = 10; r < 20; ++r) CHECK(c.observe(ctl_agreeing(r, 0.1)).empty());
  CHECK(c.settings().local_steps_scale == 0.25);
}

TEST_CASE("steps: high agreement adds local steps after patience rounds, up to the maximum",
          "[controller]") {
  Controller c(ctl_config({Rule::LocalSteps}, 2), 4, 1.0);
  CHECK(c.observe(ctl_agreeing(1, 0.9)).empty());
  auto d = c.observe(ctl_agreeing(2, 0.9));
  REQUIRE(d.size() == 1);
  CHECK(d[0].signal == "agreement 0.9 > 0.7 for 2 consecutive rounds");
  CHECK(d[0].action == "local steps scale 1 -> 1.5");
  CHECK(c.observe(ctl_agreeing(3, 0.9)).empty());
  REQUIRE(c.observe(ctl_agreeing(4, 0.9)).size() == 1);
  CHECK(c.settings().local_steps_scale == 2.0);  // min(2.25, steps_max_scale)
  for (int r = 5; r < 12; ++r) CHECK(c.observe(ctl_agreeing(r, 0.95)).empty());
  CHECK(c.settings().local_steps_scale == 2.0);
  // Agreement between the thresholds, or one party alone, changes nothing.
  for (int r = 12; r < 16; ++r) CHECK(c.observe(ctl_agreeing(r, 0.5)).empty());
  for (int r = 16; r < 20; ++r) CHECK(c.observe(ctl_agreeing(r, 0.1, 1)).empty());
  CHECK(c.settings().local_steps_scale == 2.0);
}

TEST_CASE(
    "server-lr: FID worse for patience evaluations halves the server lr; a new best doubles it",
    "[controller]") {
  Controller c(ctl_config({Rule::ServerLr}, 2), 3, 1.0);
  CHECK(c.observe(ctl_evaluated(1, 10.0)).empty());  // the first best
  CHECK(c.observe(ctl_evaluated(2, 11.0)).empty());  // worse (> 10.5): 1
  CHECK(c.observe(ctl_evaluated(3, 10.4)).empty());  // within 5 %: the streak breaks
  CHECK(c.observe(ctl_evaluated(4, 11.0)).empty());  // 1
  // Rounds without an evaluation neither count nor break the streak.
  CHECK(c.observe(ctl_round(5, {1, 1, 1})).empty());
  auto d = c.observe(ctl_evaluated(6, 12.0));  // 2
  REQUIRE(d.size() == 1);
  CHECK(d[0].rule == "server-lr");
  CHECK(d[0].signal == "FID 12 > 1.05x best 10 in 2 consecutive evaluations");
  CHECK(d[0].action == "server lr scale 1 -> 0.5");
  CHECK(c.settings().server_lr_scale == 0.5);
  int round = 7;
  for (double expected : {0.25, 0.125}) {
    CHECK(c.observe(ctl_evaluated(round++, 11.0)).empty());
    CHECK(c.observe(ctl_evaluated(round++, 11.0)).size() == 1);
    CHECK(c.settings().server_lr_scale == expected);
  }
  // At server_lr_min_scale: no further halving.
  for (int i = 0; i < 6; ++i) CHECK(c.observe(ctl_evaluated(round++, 11.0)).empty());
  CHECK(c.settings().server_lr_scale == 0.125);
  d = c.observe(ctl_evaluated(round++, 9.0));
  REQUIRE(d.size() == 1);
  CHECK(d[0].signal == "new best FID 9 (best was 10)");
  CHECK(d[0].action == "server lr scale 0.125 -> 0.25");
  for (double expected : {0.5, 1.0, 1.0}) {
    c.observe(ctl_evaluated(round, 9.0 - round * 0.1));
    ++round;
    CHECK(c.settings().server_lr_scale == expected);
  }
}

TEST_CASE("participation: patience evaluations without a new best draw more parties, up to all",
          "[controller]") {
  Controller c(ctl_config({Rule::Participation}, 2), 8, 0.5);
  CHECK(c.settings().participation == 0.5);
  CHECK(c.observe(ctl_evaluated(1, 10.0)).empty());   // new best
  CHECK(c.observe(ctl_evaluated(2, 10.0)).empty());   // not better: 1
  CHECK(c.observe(ctl_round(3, {1, 1, 1})).empty());  // not evaluated
  auto d = c.observe(ctl_evaluated(4, 10.2));         // 2
  REQUIRE(d.size() == 1);
  CHECK(d[0].rule == "participation");
  CHECK(d[0].signal == "no new best FID in 2 consecutive evaluations (FID 10.2, best 10)");
  CHECK(d[0].action == "participation 0.5 -> 0.75");
  CHECK(c.observe(ctl_evaluated(5, 10.5)).empty());  // 1
  CHECK(c.observe(ctl_evaluated(6, 9.0)).empty());   // new best: the streak breaks
  CHECK(c.observe(ctl_evaluated(7, 9.5)).empty());   // 1
  REQUIRE(c.observe(ctl_evaluated(8, 9.5)).size() == 1);
  CHECK(c.settings().participation == 1.0);
  for (int r = 9; r < 15; ++r) CHECK(c.observe(ctl_evaluated(r, 20.0)).empty());
  CHECK(c.settings().participation == 1.0);
}

TEST_CASE("quarantine: an outlying party sits out quarantine_rounds rounds, then is re-admitted",
          "[controller]") {
  Controller c(ctl_config({Rule::Quarantine}), 5, 1.0);
  // 4.9x the median of the others: below outlier_ratio 5.
  CHECK(c.observe(ctl_round(3, {1, 1.2, 0.9, 1.1, 4.9 * 1.05})).empty());
  // Two parties are too few to call one an outlier.
  CHECK(c.observe(ctl_round(4, {1, 100})).empty());
  auto d = c.observe(ctl_round(5, {1, 1.2, 0.9, 1.1, 20}));
  REQUIRE(d.size() == 1);
  CHECK(d[0].round == 5);
  CHECK(d[0].rule == "quarantine");
  CHECK(d[0].signal == "party 4 update norm 20 = 19.05x median 1.05 of the others");
  CHECK(d[0].action == "exclude party 4 for rounds 6..8");
  CHECK(c.settings().excluded == std::vector<int>{4});
  CHECK(c.observe(ctl_round(6, {1, 1, 1, 1})).empty());
  CHECK(c.observe(ctl_round(7, {1, 1, 1, 1})).empty());
  CHECK(c.settings().excluded == std::vector<int>{4});
  d = c.observe(ctl_round(8, {1, 1, 1, 1}));
  REQUIRE(d.size() == 1);
  CHECK(d[0].signal == "party 4 sat out rounds 6..8");
  CHECK(d[0].action == "re-admit party 4 from round 9");
  CHECK(c.settings().excluded.empty());
}

TEST_CASE("quarantine: a non-finite update is quarantined even in a small round", "[controller]") {
  Controller c(ctl_config({Rule::Quarantine}), 6, 1.0);
  RoundSignals s = ctl_round(2, {1.0, 1.0});
  s.parties[1].finite = false;
  s.parties[1].party = 3;
  auto d = c.observe(s);
  REQUIRE(d.size() == 1);
  CHECK(d[0].signal == "party 3 update is not finite (norm 1)");
  CHECK(d[0].action == "exclude party 3 for rounds 3..5");
  d = c.observe(ctl_round(3, {1.0, NAN}));
  REQUIRE(d.size() == 1);
  CHECK(d[0].signal == "party 1 update is not finite (norm nan)");
  CHECK(c.settings().excluded == std::vector<int>{1, 3});
}

TEST_CASE("quarantine: never fewer than max(2, half the parties) remain", "[controller]") {
  SECTION("four parties: two must stay") {
    Controller c(ctl_config({Rule::Quarantine}), 4, 1.0);
    auto d = c.observe(ctl_round(1, {NAN, NAN, NAN, 1.0}));
    REQUIRE(d.size() == 3);
    CHECK(d[0].action == "exclude party 0 for rounds 2..4");
    CHECK(d[1].action == "exclude party 1 for rounds 2..4");
    CHECK(d[2].signal == "party 2 update is not finite (norm nan)");
    CHECK(d[2].action == "kept: would leave too few parties (1 < floor 2 of 4)");
    CHECK(c.settings().excluded == std::vector<int>{0, 1});
  }
  SECTION("ten parties: five must stay; the worst outliers go first") {
    Controller c(ctl_config({Rule::Quarantine}), 10, 1.0);
    // Four non-finite, then finite outliers ranked by their ratio to the others' median.
    auto d = c.observe(ctl_round(1, {NAN, NAN, 1, 60, 1, NAN, 1, 1, 90, NAN}));
    REQUIRE(d.size() == 6);
    CHECK(d[0].action == "exclude party 0 for rounds 2..4");
    CHECK(d[1].action == "exclude party 1 for rounds 2..4");
    CHECK(d[2].action == "exclude party 5 for rounds 2..4");
    CHECK(d[3].action == "exclude party 9 for rounds 2..4");
    CHECK(d[4].signal == "party 8 update norm 90 = 90x median 1 of the others");
    CHECK(d[4].action == "exclude party 8 for rounds 2..4");
    CHECK(d[5].signal == "party 3 update norm 60 = 60x median 1 of the others");
    CHECK(d[5].action == "kept: would leave too few parties (4 < floor 5 of 10)");
    CHECK(c.settings().excluded == std::vector<int>{0, 1, 5, 8, 9});
  }
}

TEST_CASE("rules left out of the config never fire", "[controller]") {
  Controller c(ctl_config({Rule::Quarantine}, 1), 4, 0.5);
  // Low agreement, worse FIDs, no new best: steps, server-lr and participation would all fire.
  for (int r = 1; r <= 8; ++r) CHECK(c.observe(ctl_round(r, {1, 1, 1}, 0.01, 10.0 + r)).empty());
  CHECK(ctl_text(c.settings()) == ctl_text(Settings{1, 1, 0.5, {}}));

  Controller steps_only(ctl_config({Rule::LocalSteps}, 1), 5, 0.5);
  CHECK(steps_only.observe(ctl_round(1, {1, 1, 1, 1, NAN}, 0.5, 10)).empty());
  CHECK(steps_only.observe(ctl_round(2, {1, 1, 1, 1, 100}, 10.4, 20)).empty());  // a = 0.5
  CHECK(steps_only.settings().excluded.empty());
}

TEST_CASE("observe refuses rounds out of order and parties out of range", "[controller]") {
  Controller c(ctl_config({Rule::LocalSteps}), 3, 1.0);
  c.observe(ctl_agreeing(4, 0.5, 3));
  REQUIRE_THROWS_WITH(c.observe(ctl_agreeing(4, 0.5, 3)), Contains("rounds must increase"));
  REQUIRE_THROWS_WITH(c.observe(ctl_agreeing(5, 0.5, 4)), Contains("party ids must ascend"));
  REQUIRE_THROWS_AS(Controller(ctl_config({Rule::LocalSteps}, 0), 3, 1.0), fedgan::Error);
  REQUIRE_THROWS_AS(Controller(ctl_config({Rule::LocalSteps}), 3, 0.0), fedgan::Error);
}

namespace {

// Twenty rounds that make every rule fire, some in each half: six parties, party 5 an outlier
// in rounds 3 and 12; agreement low, then high, then low; FID every other round, improving,
// then worsening, then improving.
RoundSignals ctl_synthetic(int round) {
  std::vector<double> norms;
  for (int p = 0; p < 6; ++p) norms.push_back(1.0 + 0.1 * ((round * 7 + p * 3) % 5));
  if (round == 3 || round == 12) norms[5] = 40.0 + round;
  const double agreement = round <= 6 ? 0.1 : round <= 14 ? 0.9 : 0.2;
  double mean = 0;
  for (double n : norms) mean += n;
  mean /= static_cast<double>(norms.size());
  double fid = kCtlNoFid;
  if (round % 2 == 0) fid = round <= 6 ? 50.0 - round : round <= 16 ? 40.0 + round : 30.0 - round;
  return ctl_round(round, norms, agreement * mean, fid);
}

}  // namespace

TEST_CASE("a controller restored from state() decides exactly as an uninterrupted one",
          "[controller]") {
  ControllerConfig config = parse_controller_rules("all");
  config.patience = 3;
  config.quarantine_rounds = 4;
  Controller whole(config, 6, 0.5);
  Controller first_half(config, 6, 0.5);
  std::vector<std::string> whole_decisions, whole_settings;
  for (int r = 1; r <= 20; ++r) {
    whole_decisions.push_back(ctl_text(whole.observe(ctl_synthetic(r))));
    whole_settings.push_back(ctl_text(whole.settings()));
  }
  for (int r = 1; r <= 10; ++r) first_half.observe(ctl_synthetic(r));
  const auto state = first_half.state();
  for (const auto& [key, tensor] : state) {
    CHECK(key.rfind("controller/", 0) == 0);
    CHECK((tensor.scalar_type() == torch::kFloat64 || tensor.scalar_type() == torch::kInt64));
    CHECK(tensor.numel() > 0);
  }

  Controller resumed(config, 6, 0.5);
  resumed.load_state(state);
  Controller fresh(config, 6, 0.5);  // the same second half without the state, for contrast
  std::string second_half_decisions;
  bool fresh_differs = false;
  for (int r = 11; r <= 20; ++r) {
    const auto decided = ctl_text(resumed.observe(ctl_synthetic(r)));
    CHECK(decided == whole_decisions[static_cast<std::size_t>(r - 1)]);
    CHECK(ctl_text(resumed.settings()) == whole_settings[static_cast<std::size_t>(r - 1)]);
    second_half_decisions += decided;
    const auto fresh_decided = ctl_text(fresh.observe(ctl_synthetic(r)));
    fresh_differs = fresh_differs || fresh_decided != decided ||
                    ctl_text(fresh.settings()) != ctl_text(resumed.settings());
  }
  // The second half holds decisions of every rule, and the state mattered to them.
  for (const char* rule : {"|quarantine|", "|steps|", "|server-lr|", "|participation|"})
    CHECK_THAT(second_half_decisions, Contains(rule));
  CHECK(fresh_differs);

  Controller other_size(config, 7, 0.5);
  REQUIRE_THROWS_WITH(other_size.load_state(state), Contains("controller/excluded_until"));
  auto partial = state;
  partial.erase("controller/best_fid");
  REQUIRE_THROWS_WITH(resumed.load_state(partial), Contains("'controller/best_fid' missing"));
}
