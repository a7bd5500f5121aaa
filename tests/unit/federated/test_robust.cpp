// Robust rules on one block (median, trimmed mean, Krum) against hand-computed values, and the
// simulated attacks: parsing, errors and their effect on an update; the rules as Aggregators.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/federated/aggregation/aggregator.hpp"
#include "fedgan/federated/attacks/attack.hpp"
#include "fedgan/federated/aggregation/robust_rules.hpp"

using namespace fedgan;
using namespace fedgan::federated;

namespace {

// Five parties × seven coordinates; the medians and trimmed means below are worked by hand.
const std::vector<float> kRules = {
    1,   2,  3,  4,    5,  6, 7,     // party 0
    2,   2,  -1, 0,    10, 6, 0.5,   // party 1
    3,   -4, 3,  8,    5,  1, 0.25,  // party 2
    100, 2,  2,  -100, 5,  6, 1,     // party 3
    -50, 0,  7,  1,    4,  2, 0,     // party 4
};

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("coordinate median of known values, odd and even counts", "[robust]") {
  std::vector<float> out(7);
  coordinate_median(kRules.data(), 5, 7, out.data());
  // Sorted columns: {-50,1,2,3,100} {-4,0,2,2,2} {-1,2,3,3,7} {-100,0,1,4,8} {4,5,5,5,10}
  // {1,2,6,6,6} {0,.25,.5,1,7}.
  CHECK(out == std::vector<float>{2, 2, 3, 1, 5, 6, 0.5f});
  // The first four parties: the mean of the two middle values.
  coordinate_median(kRules.data(), 4, 7, out.data());
  CHECK(out == std::vector<float>{2.5f, 2, 2.5f, 2, 5, 6, 0.75f});
  // One party: its own values.
  coordinate_median(kRules.data(), 1, 7, out.data());
  CHECK(out == std::vector<float>{1, 2, 3, 4, 5, 6, 7});
  // More columns than one internal block of 64, and a single column.
  std::vector<float> wide(3 * 150);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 150; ++c) wide[r * 150 + c] = static_cast<float>((r * 7 + c) % 5);
  std::vector<float> wide_out(150);
  coordinate_median(wide.data(), 3, 150, wide_out.data());
  for (int c = 0; c < 150; ++c) {
    std::vector<float> col = {wide[c], wide[150 + c], wide[300 + c]};
    std::sort(col.begin(), col.end());
    CHECK(wide_out[c] == col[1]);
  }
}

TEST_CASE("trimmed mean: beta*P rounds down, the rest is averaged", "[robust]") {
  CHECK(trimmed_count(0.3, 5) == 1);   // 1.5 → 1
  CHECK(trimmed_count(0.2, 5) == 1);   // exactly 1
  CHECK(trimmed_count(0.19, 5) == 0);  // 0.95 → 0: the plain mean
  CHECK(trimmed_count(0.4, 5) == 2);
  CHECK(trimmed_count(0.1, 64) == 6);  // 6.4
  CHECK(trimmed_count(0.0, 8) == 0);

  std::vector<float> out(7);
  coordinate_trimmed_mean(kRules.data(), 5, 7, trimmed_count(0.3, 5), out.data());
  // The middle three of each sorted column (see the median test), averaged.
  const std::vector<double> middle_sums = {1 + 2 + 3, 0 + 2 + 2, 2 + 3 + 3,     0 + 1 + 4,
                                           5 + 5 + 5, 2 + 6 + 6, 0.25 + 0.5 + 1};
  for (int c = 0; c < 7; ++c) CHECK(out[c] == static_cast<float>(middle_sums[c] / 3));
  // Trimming two of five leaves the median.
  std::vector<float> median(7);
  coordinate_median(kRules.data(), 5, 7, median.data());
  coordinate_trimmed_mean(kRules.data(), 5, 7, 2, out.data());
  CHECK(out == median);
  // No trimming: the plain mean.
  coordinate_trimmed_mean(kRules.data(), 5, 7, 0, out.data());
  CHECK(out[0] == static_cast<float>((1 + 2 + 3 + 100 - 50) / 5.0));
  CHECK(out[6] == static_cast<float>((7 + 0.5 + 0.25 + 1 + 0) / 5.0));
  CHECK_THROWS_WITH(coordinate_trimmed_mean(kRules.data(), 4, 7, 2, out.data()),
                    Catch::Contains("leaves none"));
}

TEST_CASE("Krum scores from the Gram matrix, selection with ties by party id", "[robust]") {
  // Offsets from b = (1..7): a0 = 0, a1 = e0, a2 = 2·e6, a3 = 10·(1..1) (the attacker), a4 = e1.
  std::vector<float> x(5 * 7);
  for (int k = 0; k < 5; ++k)
    for (int c = 0; c < 7; ++c) x[k * 7 + c] = static_cast<float>(c + 1);
  x[1 * 7 + 0] += 1;
  x[2 * 7 + 6] += 2;
  for (int c = 0; c < 7; ++c) x[3 * 7 + c] += 10;
  x[4 * 7 + 1] += 1;
  // The Gram matrix summed over two column blocks equals the one over all columns.
  std::vector<double> gram(25, 0.0), split(25, 0.0);
  accumulate_gram(x.data(), 5, 7, gram.data());
  std::vector<float> left(5 * 3), right(5 * 4);
  for (int k = 0; k < 5; ++k) {
    std::copy(x.begin() + k * 7, x.begin() + k * 7 + 3, left.begin() + k * 3);
    std::copy(x.begin() + k * 7 + 3, x.begin() + k * 7 + 7, right.begin() + k * 4);
  }
  accumulate_gram(left.data(), 5, 3, split.data());
  accumulate_gram(right.data(), 5, 4, split.data());
  CHECK(gram == split);
  CHECK(gram[0] == 140.0);  // Σ c², c = 1..7
  // Squared distances: d01 = 1, d02 = 4, d04 = 1, d12 = 5, d14 = 2, d24 = 5, d03 = 700,
  // d13 = 681, d23 = 664, d34 = 681. With f = 1 each score sums the 5 - 1 - 2 = 2 nearest.
  const auto scores = krum_scores(gram, 5, 1);
  CHECK(scores == std::vector<double>{2, 3, 9, 1345, 3});
  const std::vector<int> ids = {0, 1, 2, 3, 4};
  CHECK(krum_select(scores, ids, 1) == std::vector<int>{0});
  // Parties 1 and 4 tie at 3: the lower id goes first.
  CHECK(krum_select(scores, ids, 2) == std::vector<int>{0, 1});
  CHECK(krum_select(scores, ids, 3) == std::vector<int>{0, 1, 4});
  // With other ids the tie goes the other way (rows 1 and 4 now carry ids 9 and 2).
  CHECK(krum_select(scores, {0, 9, 5, 7, 2}, 2) == std::vector<int>{0, 4});
  CHECK_THROWS_WITH(krum_scores(gram, 5, 2), Catch::Contains("more than 2f + 2 = 6"));

  std::vector<float> mean(7);
  weighted_rows_mean(x.data(), 7, {0, 1, 4}, {1, 2, 3, 4, 5}, mean.data());
  // b + (1·a0 + 2·a1 + 5·a4) / 8 = b + (0.25, 0.625, 0, ...)
  CHECK(mean == std::vector<float>{1.25f, 2.625f, 3, 4, 5, 6, 7});
}

TEST_CASE("median of a list", "[robust]") {
  CHECK(median_of({5, 10, 1, 50, 2}) == 5);
  CHECK(median_of({4, 1, 3, 2}) == 2.5);
  CHECK(median_of({7}) == 7);
  CHECK_THROWS_AS(median_of({}), Error);
}

TEST_CASE("attacks: parsing and clear errors", "[robust][attack]") {
  auto s = parse_attack("sign-flip", "3,0");
  CHECK(s.kind == AttackSpec::Kind::SignFlip);
  CHECK(s.attackers == std::vector<int>{0, 3});
  CHECK(s.attacks(0));
  CHECK(s.attacks(3));
  CHECK_FALSE(s.attacks(1));
  s = parse_attack("scale:10", "1");
  CHECK(s.kind == AttackSpec::Kind::Scale);
  CHECK(s.value == 10);
  CHECK(attack_name(s) == "scale:10");
  s = parse_attack("gaussian:0.5", "2");
  CHECK(s.kind == AttackSpec::Kind::Gaussian);
  CHECK(attack_name(s) == "gaussian:0.5");
  CHECK(parse_attack("nan", "0").kind == AttackSpec::Kind::NaN);
  CHECK_FALSE(parse_attack("none", "").active());

  CHECK(error_of([] { parse_attack("flip", "0"); }) ==
        "--attack: 'flip' is not an attack (expected none, sign-flip, scale:K, gaussian:SIGMA "
        "or nan)");
  CHECK_THAT(error_of([] { parse_attack("scale", "0"); }), Catch::Contains("needs a value"));
  CHECK_THAT(error_of([] { parse_attack("scale:x", "0"); }),
             Catch::Contains("'x' is not a finite number"));
  CHECK_THAT(error_of([] { parse_attack("scale:inf", "0"); }),
             Catch::Contains("not a finite number"));
  CHECK_THAT(error_of([] { parse_attack("gaussian:0", "0"); }), Catch::Contains("must be > 0"));
  CHECK_THAT(error_of([] { parse_attack("nan:3", "0"); }), Catch::Contains("takes no value"));
  CHECK_THAT(error_of([] { parse_attack("sign-flip", ""); }), Catch::Contains("needs --attackers"));
  CHECK_THAT(error_of([] { parse_attack("none", "1"); }), Catch::Contains("needs an --attack"));
  CHECK_THAT(error_of([] { parse_attack("nan", "0,-1"); }),
             Catch::Contains("--attackers: '-1' is not a party id"));
  CHECK_THAT(error_of([] { parse_attack("nan", "0,,1"); }),
             Catch::Contains("--attackers: '' is not a party id"));
  CHECK_THAT(error_of([] { parse_attack("nan", "0,"); }), Catch::Contains("ends with a comma"));
  CHECK_THAT(error_of([] { parse_attack("nan", "2,2"); }), Catch::Contains("listed twice"));
  CHECK_THAT(error_of([] { check_attackers(parse_attack("nan", "0,8"), 8); }),
             Catch::Contains("--attackers: party 8 does not exist (the run has 8 parties, ids "
                             "0..7)"));
  CHECK_NOTHROW(check_attackers(parse_attack("nan", "0,7"), 8));
}

TEST_CASE("attacks: what each does to an update", "[robust][attack]") {
  const std::vector<float> honest = {1, -2, 0.5f, 0};
  auto attacked = [&](const std::string& attack, int party, int round = 1, std::uint64_t seed = 0) {
    auto v = honest;
    apply_attack(parse_attack(attack, "1"), party, round, seed, v.data(),
                 static_cast<std::int64_t>(v.size()));
    return v;
  };
  CHECK(attacked("sign-flip", 1) == std::vector<float>{-1, 2, -0.5f, -0.0f});
  CHECK(attacked("scale:10", 1) == std::vector<float>{10, -20, 5, 0});
  CHECK(attacked("scale:10", 0) == honest);  // not an attacker
  for (float v : attacked("nan", 1)) CHECK(std::isnan(v));

  // Gaussian: a function of (seed, party, round) only; N(0, σ²) in distribution.
  CHECK(attacked("gaussian:2", 1, 3, 7) == attacked("gaussian:2", 1, 3, 7));
  CHECK(attacked("gaussian:2", 1, 3, 7) != attacked("gaussian:2", 1, 4, 7));
  CHECK(attacked("gaussian:2", 1, 3, 7) != attacked("gaussian:2", 1, 3, 8));
  std::vector<float> big(100000, 5.0f);
  apply_attack(parse_attack("gaussian:2", "1"), 1, 1, 0, big.data(), 100000);
  double sum = 0, sum2 = 0;
  for (float v : big) {
    sum += v;
    sum2 += static_cast<double>(v) * v;
  }
  const double mean = sum / 1e5, sd = std::sqrt(sum2 / 1e5 - mean * mean);
  CHECK(std::abs(mean) < 0.03);    // 5 standard errors (2/√1e5 ≈ 0.0063)
  CHECK(std::abs(sd - 2) < 0.03);  // standard error of sd ≈ 2/√2e5 ≈ 0.0045
}

TEST_CASE("robust aggregators through the Aggregator factory and interface", "[robust]") {
  auto comm = comm::make_serial_communicator();
  const std::vector<std::int64_t> sizes = {3, 1, 2, 1};
  // Three parties; segment values chosen so that each coordinate's median is known.
  const std::vector<std::vector<float>> flat = {
      {1, 5, -2, 0, 4, 1, 9}, {2, 5, 7, 3, -4, 1, 8}, {10, -1, 0, 6, 4, 2, 7}};
  auto run = [&](AggregatorConfig config) {
    auto agg = make_aggregator(config, sizes, torch::kCPU, *comm);
    CHECK(agg->name() == to_string(config.rule));
    agg->begin_round(RoundContext{});
    for (int k = 0; k < 3; ++k) {
      Update u;
      u.party = k;
      u.samples = 10 * (k + 1);
      u.weight = static_cast<double>(u.samples);
      u.d_loss = 1;
      auto t = torch::tensor(flat[k]);
      std::int64_t at = 0;
      for (auto n : sizes) {
        u.segments.push_back(t.narrow(0, at, n).clone());
        at += n;
      }
      agg->add(std::move(u));
    }
    return agg->finish(*comm);
  };
  AggregatorConfig config;
  config.rule = AggregationRule::Median;
  const auto median = run(config);
  CHECK(median.totals.parties == 3);
  CHECK(median.totals.d_loss == 3);
  CHECK(median.total_weight == 60);
  std::vector<float> got;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    auto m = median.mean(i);
    got.insert(got.end(), m.data_ptr<float>(), m.data_ptr<float>() + m.numel());
  }
  CHECK(got == std::vector<float>{2, 5, 0, 3, 4, 1, 8});
  config.rule = AggregationRule::NormBound;
  CHECK(run(config).totals.parties == 3);
  // Every rule has a name and a factory, and the names parse back to the rules.
  const auto names = aggregation_rules().names();
  CHECK(names == std::vector<std::string>{"fedavg", "median", "trimmed-mean", "krum", "multi-krum",
                                          "norm-bound"});
  for (const auto& entry : aggregation_rules()) {
    CHECK(parse_aggregation_rule(entry.name) == entry.value);
    CHECK(entry.make != nullptr);
  }
}

TEST_CASE("aggregation settings are checked against the parties of a round", "[robust]") {
  AggregatorConfig krum;
  krum.rule = AggregationRule::Krum;
  krum.krum_f = 1;
  CHECK_THAT(aggregator_settings_problem(krum, 4, 1.0),
             Catch::Contains("--krum-f 1 needs more than 2f + 2 = 4 parties in a round, but 4 "
                             "of the 4 parties take part"));
  CHECK(aggregator_settings_problem(krum, 5, 1.0).empty());
  CHECK_FALSE(aggregator_settings_problem(krum, 8, 0.5).empty());  // 4 drawn of 8
  AggregatorConfig multi = krum;
  multi.rule = AggregationRule::MultiKrum;
  multi.krum_m = 5;
  CHECK_THAT(aggregator_settings_problem(multi, 5, 1.0),
             Catch::Contains("--krum-m 5 is more than the 4 updates Multi-Krum may average"));
  multi.krum_m = 4;
  CHECK(aggregator_settings_problem(multi, 5, 1.0).empty());
  AggregatorConfig median;
  median.rule = AggregationRule::Median;
  CHECK(aggregator_settings_problem(median, 1, 1.0).empty());
}
