// Robust aggregation benchmark: the time of one aggregation of P party updates of N values over
// R ranks for FedAvg (n_k·Δ_k into one float64 buffer and one allreduce, as the fused
// aggregator does) and each robust rule, the ratio to FedAvg, the floats a rank holds for the
// rule beyond its own updates, and the process's peak resident memory (getrusage, the largest
// over ranks; a high-water mark, so run one rule per process to see each rule's own peak).
// Each timed repetition starts after a barrier; its time is the slowest rank's.
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/federated/aggregation/aggregator.hpp"
#include "fedgan/federated/aggregation/robust.hpp"
#include "fedgan/models/gan.hpp"

using namespace fedgan;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class Fn>
double time_op(comm::Communicator& comm, int reps, Fn&& fn) {
  fn();  // warm-up
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::int64_t us = static_cast<std::int64_t>(dt * 1e6);
    comm.allreduce_max(&us, 1);
    times.push_back(static_cast<double>(us) * 1e-6);
  }
  return median(times);
}

std::int64_t peak_rss_mb(comm::Communicator& comm) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::int64_t mb = usage.ru_maxrss / 1024;  // kB on Linux
  comm.allreduce_max(&mb, 1);
  return mb;
}

// Values one round aggregates for the default model (G and D, parameters and float buffers).
std::int64_t default_model_numel() {
  const auto shapes = models::ModelRegistry::instance().shapes(models::ModelConfig{});
  std::int64_t total = 0;
  for (const auto* side : {&shapes.generator, &shapes.discriminator})
    for (const auto& [name, shape] : *side) {
      std::int64_t n = 1;
      for (auto d : shape) n *= d;
      total += n;
    }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  auto comm = comm::make_mpi_communicator(&argc, &argv);
  int reps = 5, parties = 8;
  std::int64_t numel = 0;
  bool json = false;
  std::string rules = "median,trimmed-mean,krum,multi-krum,norm-bound";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--parties") && i + 1 < argc)
      parties = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--numel") && i + 1 < argc)
      numel = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--rules") && i + 1 < argc)
      rules = argv[++i];
    else if (!std::strcmp(argv[i], "--json"))
      json = true;
    else {
      if (comm->is_root())
        std::printf(
            "usage: mpirun -n R bench_robust [--parties P] [--numel N (default: the "
            "default model's)] [--rules median,trimmed-mean,krum,multi-krum,norm-bound] "
            "[--reps K] [--json]\n");
      comm.reset();
      comm::finalize_mpi();
      return std::strcmp(argv[i], "--help") ? 2 : 0;
    }
  }
  torch::set_num_threads(1);
  if (numel <= 0) numel = default_model_numel();
  const int R = comm->size(), r = comm->rank();
  if (parties < R || reps < 1) {
    if (comm->is_root())
      std::fprintf(stderr, "bench_robust: need --parties >= ranks, --reps >= 1\n");
    comm.reset();
    comm::finalize_mpi();
    return 2;
  }

  // This rank's parties [r·P/R, (r+1)·P/R), each a seeded random update.
  std::vector<std::vector<float>> rows;
  std::vector<federated::PartyVector> mine;
  for (int k = r * parties / R; k < (r + 1) * parties / R; ++k) {
    torch::manual_seed(static_cast<std::uint64_t>(k) + 1);
    auto t = torch::randn({numel});
    rows.emplace_back(t.data_ptr<float>(), t.data_ptr<float>() + numel);
  }
  for (int k = r * parties / R, i = 0; k < (r + 1) * parties / R; ++k, ++i)
    mine.push_back({k, 100.0 + k, rows[static_cast<std::size_t>(i)].data()});
  const std::int64_t rss_updates = peak_rss_mb(*comm);

  std::vector<double> sum(static_cast<std::size_t>(numel));
  const double t_fedavg = time_op(*comm, reps, [&] {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (const auto& p : mine)
      for (std::int64_t c = 0; c < numel; ++c) sum[c] += p.weight * p.values[c];
    comm->allreduce_sum(sum.data(), sum.size());
  });
  const std::int64_t rss_fedavg = peak_rss_mb(*comm);
  if (comm->is_root() && !json) {
    std::printf(
        "# robust aggregation: %d parties, %lld values each, %d rank(s), median of %d "
        "reps, time = slowest rank; own updates %.1f MB per rank\n",
        parties, static_cast<long long>(numel), R, reps,
        static_cast<double>(mine.size()) * numel * 4 / 1e6);
    std::printf("%-13s %10s %9s %14s %12s\n", "rule", "median_ms", "vs_fedavg", "extra_MB/rank",
                "peak_RSS_MB");
    std::printf("%-13s %10.2f %9.2f %14.1f %12lld\n", "fedavg", t_fedavg * 1e3, 1.0,
                static_cast<double>(numel) * 8 / 1e6, static_cast<long long>(rss_fedavg));
  }
  (void)rss_updates;
  std::stringstream list(rules);
  std::string name;
  while (std::getline(list, name, ',')) {
    federated::AggregatorConfig cfg;
    cfg.rule = federated::parse_aggregation_rule(name);
    cfg.krum_f = std::max(1, parties / 8);
    federated::RobustResult result;
    const double t = time_op(
        *comm, reps, [&] { result = federated::robust_aggregate(*comm, cfg, mine, numel); });
    std::int64_t extra = result.buffer_values;
    comm->allreduce_max(&extra, 1);
    const std::int64_t rss = peak_rss_mb(*comm);
    if (!comm->is_root()) continue;
    if (json)
      std::printf(
          "{\"rule\":\"%s\",\"parties\":%d,\"numel\":%lld,\"ranks\":%d,"
          "\"median_s\":%.6f,\"fedavg_s\":%.6f,\"extra_floats\":%lld,\"peak_rss_mb\":%lld}\n",
          name.c_str(), parties, static_cast<long long>(numel), R, t, t_fedavg,
          static_cast<long long>(extra), static_cast<long long>(rss));
    else
      std::printf("%-13s %10.2f %9.2f %14.1f %12lld\n", name.c_str(), t * 1e3, t / t_fedavg,
                  static_cast<double>(extra) * 4 / 1e6, static_cast<long long>(rss));
  }
  comm.reset();
  comm::finalize_mpi();
  return 0;
}
