// Secure-aggregation cost per round against plain aggregation, at P parties spread over the
// ranks (rank r hosts parties [r·P/R, (r+1)·P/R)) and updates of L values.
//   plain:  each party's weighted update added into one float64 buffer, one allreduce (as
//           FedAvgAggregator does);
//   secure: fresh keys, encrypted Shamir shares, fixed-point encoding, pairwise ChaCha20 masks,
//           a uint64 allreduce, decoding; optionally with one party failing after masking
//           (recovered from shares).
// A round's time is the slowest rank's (barrier before, max after); the median of --reps.
// Bytes are per rank: the allreduce payload, and for secure aggregation the protocol records
// this rank receives (keys, encrypted shares, revealed shares, via allgatherv).
// Prints a table, or one JSON object per line with --json.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/privacy/fixed_point.hpp"
#include "fedgan/privacy/secure_aggregation.hpp"

namespace {

using BenchClock = std::chrono::steady_clock;

std::vector<std::int64_t> parse_list(const char* text) {
  std::vector<std::int64_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::atoll(item.c_str()));
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Measured {
  double seconds = 0;
  std::int64_t bytes = 0;  // per rank
  fedgan::privacy::SecAggCost cost;
};

// Party k's update: a fixed pattern in [-1, 1] (its values do not change the cost).
void fill_update(std::vector<float>& x, std::int64_t k) {
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(
        ((i * 2654435761u + static_cast<std::size_t>(k) * 40503u) % 2001) / 1000.0 - 1.0);
}

}  // namespace

int main(int argc, char** argv) {
  auto comm = fedgan::comm::make_mpi_communicator(&argc, &argv);
  std::vector<std::int64_t> party_counts = {8, 64, 512};
  std::vector<std::int64_t> sizes = {100000};
  int reps = 3;
  bool json = false, with_drop = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--parties") && i + 1 < argc)
      party_counts = parse_list(argv[++i]);
    else if (!std::strcmp(argv[i], "--numel") && i + 1 < argc)
      sizes = parse_list(argv[++i]);
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--no-drop"))
      with_drop = false;
    else if (!std::strcmp(argv[i], "--json"))
      json = true;
    else {
      if (comm->is_root())
        std::printf(
            "usage: mpirun -n R bench_secagg [--parties 8,64,512] [--numel 100000] "
            "[--reps 3] [--no-drop] [--json]\n");
      comm.reset();
      fedgan::comm::finalize_mpi();
      return std::strcmp(argv[i], "--help") ? 2 : 0;
    }
  }
  const int R = comm->size(), r = comm->rank();
  if (comm->is_root() && !json) {
    std::printf(
        "# secure aggregation vs plain, %d rank(s), median of %d rounds, time = slowest "
        "rank, bytes per rank\n",
        R, reps);
    std::printf("%7s %9s %-11s %11s %11s %9s %13s %9s %8s %8s %8s %8s\n", "parties", "numel",
                "method", "round_ms", "added_ms", "x_plain", "bytes", "x_bytes", "keys_ms",
                "share_ms", "mask_ms", "recov_ms");
  }
  for (auto P : party_counts) {
    for (auto L64 : sizes) {
      const auto L = static_cast<std::size_t>(L64);
      std::vector<std::int64_t> mine;
      for (std::int64_t k = r * P / R; k < (r + 1) * P / R; ++k) mine.push_back(k);
      std::vector<std::vector<float>> updates(mine.size(), std::vector<float>(L));
      for (std::size_t i = 0; i < mine.size(); ++i) fill_update(updates[i], mine[i]);
      const double weight = 100.0;  // every party holds 100 samples
      const double C = 1.0;         // clip bound per value (as after L2 clipping to 1)
      fedgan::privacy::FixedPointCodec codec(weight * C, weight * C * static_cast<double>(P), P);

      auto timed = [&](auto&& round) {
        std::vector<double> times;
        Measured last;
        for (int rep = 0; rep < reps; ++rep) {
          comm->barrier();
          const auto t0 = BenchClock::now();
          last = round(rep);
          double dt = std::chrono::duration<double>(BenchClock::now() - t0).count();
          std::int64_t us = static_cast<std::int64_t>(dt * 1e6);
          comm->allreduce_max(&us, 1);
          times.push_back(static_cast<double>(us) * 1e-6);
        }
        last.seconds = median(times);
        return last;
      };

      const Measured plain = timed([&](int) {
        std::vector<double> buffer(L + 1, 0.0);
        for (std::size_t i = 0; i < mine.size(); ++i) {
          for (std::size_t j = 0; j < L; ++j) buffer[j] += weight * updates[i][j];
          buffer[L] += weight;
        }
        comm->allreduce_sum(buffer.data(), buffer.size());
        Measured m;
        m.bytes = static_cast<std::int64_t>(buffer.size() * 8);
        return m;
      });

      auto secure_round = [&](std::int64_t drop_party) {
        return [&, drop_party](int rep) {
          fedgan::privacy::SecAggOptions opt;
          fedgan::privacy::SecAggProtocol agg(*comm, L, opt);
          std::vector<fedgan::privacy::SecAggParty> hosted;
          for (auto k : mine) hosted.push_back({k, weight});
          agg.begin_round(rep + 1, hosted);
          std::vector<std::uint64_t> enc(L);
          for (std::size_t i = 0; i < mine.size(); ++i) {
            codec.encode(updates[i].data(), L, weight, enc.data());
            agg.add(mine[i], enc, mine[i] == drop_party);
          }
          auto result = agg.finish();
          std::vector<double> mean(L);
          if (!result.abandoned) codec.decode(result.sum.data(), L, mean.data());
          Measured m;
          m.cost = agg.cost();
          m.bytes = m.cost.vector_bytes + m.cost.protocol_bytes_received;
          return m;
        };
      };
      struct Row {
        const char* method;
        Measured m;
      };
      std::vector<Row> rows = {{"plain", plain}, {"secure", timed(secure_round(-1))}};
      if (with_drop) rows.push_back({"secure_drop", timed(secure_round(P / 2))});
      for (auto& row : rows) {
        // Phase times: the slowest rank's, from the last round.
        double phases[5] = {row.m.cost.keys_s, row.m.cost.shares_s, row.m.cost.mask_s,
                            row.m.cost.recover_s, 0};
        std::int64_t us[4];
        for (int i = 0; i < 4; ++i) us[i] = static_cast<std::int64_t>(phases[i] * 1e6);
        comm->allreduce_max(us, 4);
        if (!comm->is_root()) continue;
        const double added = row.m.seconds - plain.seconds;
        if (json) {
          std::printf(
              "{\"ranks\":%d,\"parties\":%lld,\"numel\":%zu,\"method\":\"%s\","
              "\"round_s\":%.6f,\"added_s\":%.6f,\"x_plain\":%.3f,\"bytes\":%lld,"
              "\"x_bytes\":%.3f,\"keys_s\":%.6f,\"shares_s\":%.6f,\"mask_s\":%.6f,"
              "\"recover_s\":%.6f,\"key_agreements\":%lld,\"mask_streams\":%lld}\n",
              R, static_cast<long long>(P), L, row.method, row.m.seconds, added,
              row.m.seconds / plain.seconds, static_cast<long long>(row.m.bytes),
              static_cast<double>(row.m.bytes) / static_cast<double>(plain.bytes), us[0] * 1e-6,
              us[1] * 1e-6, us[2] * 1e-6, us[3] * 1e-6,
              static_cast<long long>(row.m.cost.key_agreements),
              static_cast<long long>(row.m.cost.mask_streams));
        } else {
          std::printf("%7lld %9zu %-11s %11.2f %11.2f %9.1f %13lld %9.2f %8.1f %8.1f %8.1f %8.1f\n",
                      static_cast<long long>(P), L, row.method, row.m.seconds * 1e3, added * 1e3,
                      row.m.seconds / plain.seconds, static_cast<long long>(row.m.bytes),
                      static_cast<double>(row.m.bytes) / static_cast<double>(plain.bytes),
                      us[0] * 1e-3, us[1] * 1e-3, us[2] * 1e-3, us[3] * 1e-3);
        }
      }
    }
  }
  comm.reset();
  fedgan::comm::finalize_mpi();
  return 0;
}
