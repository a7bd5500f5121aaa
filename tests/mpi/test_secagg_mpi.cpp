// Secure aggregation across ranks: the masked sum equals the unmasked fixed-point sum bit for
// bit at any rank count, with several parties per rank; one dropout is recovered; below the
// threshold every rank abandons the round with the same message.
#include <algorithm>
#include <catch2/catch.hpp>
#include <random>

#include "fedgan/privacy/fixed_point.hpp"
#include "fedgan/privacy/secure_aggregation.hpp"
#include "mpi_fixture.hpp"

using namespace fedgan;
using namespace fedgan::privacy;
using fedgan::testing::world;

namespace {

constexpr std::int64_t kSecAggParties = 8;
constexpr std::size_t kSecAggNumel = 5000;

std::vector<std::uint64_t> secagg_mpi_encoded(const FixedPointCodec& codec, std::int64_t k) {
  std::mt19937_64 gen(77 + static_cast<std::uint64_t>(k));
  std::vector<float> x(kSecAggNumel);
  for (auto& v : x) v = static_cast<float>(static_cast<double>(gen() >> 11) * 0x1p-53 * 2 - 1);
  std::vector<std::uint64_t> out(kSecAggNumel);
  codec.encode(x.data(), x.size(), static_cast<double>(10 + k), out.data());
  return out;
}

// Rank r hosts the contiguous block of parties [r·P/R, (r+1)·P/R), as fedgan train does.
std::vector<std::int64_t> secagg_mpi_hosted(const std::vector<std::int64_t>& ids) {
  auto& comm = world();
  const std::int64_t R = comm.size(), r = comm.rank();
  std::vector<std::int64_t> mine;
  for (auto k : ids)
    if (k >= r * kSecAggParties / R && k < (r + 1) * kSecAggParties / R) mine.push_back(k);
  return mine;
}

SecAggResult secagg_mpi_run(std::int64_t round, const std::vector<std::int64_t>& ids,
                            const std::vector<std::int64_t>& fail, const FixedPointCodec& codec) {
  SecAggOptions opt;
  opt.test_seed = 2024;
  SecAggProtocol agg(world(), kSecAggNumel, opt);
  std::vector<SecAggParty> hosted;
  for (auto k : secagg_mpi_hosted(ids)) hosted.push_back({k, static_cast<double>(10 + k)});
  agg.begin_round(round, hosted);
  for (auto& p : hosted) {
    auto enc = secagg_mpi_encoded(codec, p.id);
    agg.add(p.id, enc, std::find(fail.begin(), fail.end(), p.id) != fail.end());
  }
  return agg.finish();
}

std::vector<std::uint64_t> secagg_mpi_plain(const std::vector<std::int64_t>& ids,
                                            const FixedPointCodec& codec) {
  std::vector<std::uint64_t> sum(kSecAggNumel, 0);
  for (auto k : ids) {
    const auto enc = secagg_mpi_encoded(codec, k);
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += enc[i];
  }
  return sum;
}

}  // namespace

TEST_CASE("uint64 allreduce wraps exactly", "[mpi][secagg]") {
  auto& comm = world();
  std::vector<std::uint64_t> v = {~std::uint64_t{0}, std::uint64_t{1} << 63, 5};
  comm.allreduce_sum(v.data(), v.size());
  const auto R = static_cast<std::uint64_t>(comm.size());
  CHECK(v[0] == ~std::uint64_t{0} * R);  // −R mod 2^64
  CHECK(v[1] == (R % 2 ? std::uint64_t{1} << 63 : 0));
  CHECK(v[2] == 5 * R);
}

TEST_CASE("secure aggregation: masked sum = unmasked fixed-point sum, exactly", "[mpi][secagg]") {
  const double C = 1.0, wmax = 10 + kSecAggParties;
  const FixedPointCodec codec(C * wmax, C * wmax * kSecAggParties, kSecAggParties);
  std::vector<std::int64_t> all(kSecAggParties);
  for (std::int64_t k = 0; k < kSecAggParties; ++k) all[k] = k;
  const auto result = secagg_mpi_run(1, all, {}, codec);
  REQUIRE_FALSE(result.abandoned);
  CHECK(result.survivors == all);
  CHECK(result.sum == secagg_mpi_plain(all, codec));
  // The decoded sum is the float64 weighted sum within the codec's rounding.
  std::vector<double> dec(kSecAggNumel);
  codec.decode(result.sum.data(), dec.size(), dec.data());
  std::vector<double> exact(kSecAggNumel, 0.0);
  for (auto k : all) {
    std::vector<double> one(kSecAggNumel);
    const auto enc = secagg_mpi_encoded(codec, k);
    codec.decode(enc.data(), one.size(), one.data());
    for (std::size_t i = 0; i < exact.size(); ++i) exact[i] += one[i];
  }
  for (std::size_t i = 0; i < dec.size(); ++i)
    REQUIRE(std::abs(dec[i] - exact[i]) <= 1e-12 * std::abs(exact[i]) + 1e-300);
}

TEST_CASE("secure aggregation: one dropout recovered = the run without that party",
          "[mpi][secagg]") {
  const double wmax = 10 + kSecAggParties;
  const FixedPointCodec codec(wmax, wmax * kSecAggParties, kSecAggParties);
  std::vector<std::int64_t> all(kSecAggParties), without;
  for (std::int64_t k = 0; k < kSecAggParties; ++k) {
    all[k] = k;
    if (k != 5) without.push_back(k);
  }
  const auto recovered = secagg_mpi_run(2, all, {5}, codec);
  REQUIRE_FALSE(recovered.abandoned);
  CHECK(recovered.dropped == std::vector<std::int64_t>{5});
  CHECK(recovered.survivors == without);
  const auto absent = secagg_mpi_run(2, without, {}, codec);
  REQUIRE_FALSE(absent.abandoned);
  CHECK(recovered.sum == absent.sum);
  CHECK(recovered.sum == secagg_mpi_plain(without, codec));
  CHECK(recovered.weight_sum == absent.weight_sum);
}

TEST_CASE("secure aggregation: below the threshold every rank abandons the round",
          "[mpi][secagg]") {
  const FixedPointCodec codec(20.0, 160.0, kSecAggParties);
  std::vector<std::int64_t> all(kSecAggParties);
  for (std::int64_t k = 0; k < kSecAggParties; ++k) all[k] = k;
  // t = ⌊8/2⌋ + 1 = 5: four dropouts leave 4 survivors.
  const auto result = secagg_mpi_run(3, all, {0, 3, 4, 7}, codec);
  CHECK(result.abandoned);
  CHECK(result.threshold == 5);
  CHECK(result.sum.empty());
  // The same decision and message on every rank.
  auto messages = world().allgather(result.message);
  for (auto& m : messages) CHECK(m == messages[0]);
  CHECK(result.message.find("4 of 8 parties survived") != std::string::npos);
}
