// Real-data statistics for evaluation: the pooled and per-party feature statistics of a
// dataset file (for FID-all and FID-avg) and a seeded subset of real features (for KID and
// precision/recall). Computed by all ranks together (each embeds its slice of every party, one
// allreduce) and cached in a small HDF5 file keyed by the dataset's path, size and mtime and the
// evaluator's checksum; a stale cache is recomputed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/eval/feature_net.hpp"
#include "fedgan/eval/feature_stats.hpp"

namespace fedgan::eval {

inline constexpr const char* kRealStatsFormat = "fedgan-real-stats-1";

struct RealStatsOptions {
  std::int64_t max_features = 10000;  // size of the real feature subset kept for KID and P/R
  std::uint64_t seed = 0;             // picks that subset
  bool use_cache = true;
  std::string cache_path;  // empty: default_cache_path()
};

struct RealStats {
  std::string dataset;                // the file the statistics describe
  std::string evaluator_checksum;     // the evaluator that embedded it
  FeatureStats all;                   // pooled over every party
  std::vector<FeatureStats> parties;  // party k's own data (one entry when the file has none)
  torch::Tensor features;             // float32 [m, d]: a seeded random subset of the pooled data
  bool from_cache = false;
};

// "<dataset>.stats-<first 8 hex digits of the evaluator checksum>.h5", beside the dataset.
std::string default_cache_path(const std::string& dataset, const Evaluator& evaluator);

// Collective: every rank embeds a contiguous slice of every party's rows (so the work splits
// evenly even for one party); the statistics are summed with one allreduce and the subset
// features gathered, so every rank returns the same RealStats. fedgan::Error (on every rank)
// naming the file for a missing file, images that are not uint8 [N,C,H,W], or a shape the
// evaluator does not take.
RealStats compute_real_stats(Communicator& comm, const std::string& dataset, Evaluator& evaluator,
                             const RealStatsOptions& options = {});

// Collective: rank 0 reads the cache when it matches (dataset path, size, mtime, evaluator
// checksum, subset size and seed) and broadcasts it; otherwise compute_real_stats and rank 0
// writes the cache (atomically; a cache that cannot be written is a warning, not an error).
RealStats load_or_compute_real_stats(Communicator& comm, const std::string& dataset,
                                     Evaluator& evaluator, const RealStatsOptions& options = {});

}  // namespace fedgan::eval
