// Aggregation micro-benchmark: one fused allreduce of a flat model vs one allreduce per
// parameter tensor (the naive loop) vs a raw MPI_Allreduce of the same bytes.
// Each timed repetition starts after a barrier, so waiting for a slow rank is not counted;
// a repetition's time is the slowest rank's. Prints a table (and --json lines for plots).
// Raw MPI is used here on purpose, as the baseline; library code reaches MPI only via comm/.
#include <mpi.h>

#include "fedgan/comm/communicator.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Layout {
  std::string name;
  std::vector<std::int64_t> sizes;  // elements per tensor
};

// A DCGAN-like G+D for 28x28 images: ~1M floats in ~30 tensors (conv weights, biases, BN).
Layout dcgan_layout() {
  return {"dcgan",
          {/*G*/ 100 * 256 * 7 * 7 / 4, 256, 256, 256, 256 * 128 * 16, 128, 128, 128,
           128 * 64 * 16, 64, 64, 64, 64 * 1 * 16, 1,
           /*D*/ 1 * 64 * 16, 64, 64 * 128 * 16, 128, 128, 128, 128 * 256 * 9, 256, 256, 256,
           256 * 16, 1, 256, 256, 128, 128}};
}

Layout small_layout() { return {"500x1k", std::vector<std::int64_t>(500, 1000)}; }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class Fn>
double time_op(fedgan::comm::Communicator& comm, int reps, Fn&& fn) {
  for (int i = 0; i < 3; ++i) fn();  // warm-up
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // The collective is done when the slowest rank is done.
    MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    times.push_back(dt);
  }
  return median(times);
}

}  // namespace

int main(int argc, char** argv) {
  auto comm = fedgan::comm::make_mpi_communicator(&argc, &argv);
  int reps = 50;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--json")) json = true;
    else if (!std::strcmp(argv[i], "--help")) {
      if (comm->is_root()) std::printf("usage: mpirun -n R bench_aggregate [--reps N] [--json]\n");
      comm.reset();
      fedgan::comm::finalize_mpi();
      return 0;
    }
  }
  const int R = comm->size();
  if (comm->is_root() && !json) {
    std::printf("# aggregation benchmark, %d rank(s), median of %d reps, time = slowest rank\n",
                R, reps);
    std::printf("%-8s %5s %10s %8s %-10s %12s %10s %10s %8s\n", "model", "ranks", "bytes",
                "tensors", "method", "median_us", "algBW_GB/s", "busBW_GB/s", "vs_raw");
  }
  for (const Layout& layout : {dcgan_layout(), small_layout()}) {
    std::int64_t total = 0;
    for (auto n : layout.sizes) total += n;
    auto flat = torch::ones({total});
    std::vector<torch::Tensor> separate;
    for (auto n : layout.sizes) separate.push_back(torch::ones({n}));
    std::vector<float> raw(static_cast<std::size_t>(total), 1.0f);

    const double t_raw = time_op(*comm, reps, [&] {
      MPI_Allreduce(MPI_IN_PLACE, raw.data(), static_cast<int>(total), MPI_FLOAT, MPI_SUM,
                    MPI_COMM_WORLD);
    });
    const double t_fused = time_op(*comm, reps, [&] { comm->allreduce_sum(flat); });
    const double t_loop = time_op(*comm, reps, [&] {
      for (auto& t : separate) comm->allreduce_sum(t);
    });
    const double bytes = static_cast<double>(total) * 4;
    const double bus = R > 1 ? 2.0 * (R - 1) / R : 0.0;
    struct Row { const char* method; double t; };
    for (Row row : {Row{"raw_mpi", t_raw}, Row{"fused", t_fused}, Row{"per_tensor", t_loop}}) {
      const double alg = bytes / row.t / 1e9;
      if (!comm->is_root()) continue;
      if (json) {
        std::printf("{\"model\":\"%s\",\"ranks\":%d,\"bytes\":%.0f,\"tensors\":%zu,"
                    "\"method\":\"%s\",\"median_s\":%.9f,\"alg_bw_gbs\":%.4f,"
                    "\"bus_bw_gbs\":%.4f,\"vs_raw\":%.4f}\n",
                    layout.name.c_str(), R, bytes, layout.sizes.size(), row.method, row.t, alg,
                    alg * bus, row.t / t_raw);
      } else {
        std::printf("%-8s %5d %10.0f %8zu %-10s %12.2f %10.3f %10.3f %8.2f\n",
                    layout.name.c_str(), R, bytes, layout.sizes.size(), row.method, row.t * 1e6,
                    alg, alg * bus, row.t / t_raw);
      }
    }
  }
  comm.reset();
  fedgan::comm::finalize_mpi();
  return 0;
}
