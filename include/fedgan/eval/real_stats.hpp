// Real-data statistics for evaluation: the pooled and per-party feature statistics of a
// dataset file (for FID-all and FID-avg) and a seeded subset of real features (for KID and
// precision/recall). Computed by all ranks together in fixed chunks of each party's rows
// (chunked.hpp), so they are identical at any rank or thread count, and cached in a small HDF5
// file keyed by the dataset's path, size and mtime, the evaluator's checksum, the format and the
// options; a stale cache is recomputed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/eval/chunked.hpp"
#include "fedgan/eval/feature_net.hpp"
#include "fedgan/eval/feature_stats.hpp"

namespace fedgan::eval {

// Version 2: statistics merged per chunk in chunk order (version 1 summed rank slices).
inline constexpr const char* kRealStatsFormat = "fedgan-real-stats-2";

struct RealStatsOptions {
  std::int64_t max_features = 10000;   // size of the real feature subset kept for KID and P/R
  std::uint64_t seed = 0;              // picks that subset
  std::int64_t chunk = kDefaultChunk;  // rows per evaluator forward (part of the cache key)
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

// Collective: chunk j of party k is the party's rows [j*chunk, (j+1)*chunk); the chunks, in
// party order, are shared round-robin among the ranks (so the work splits evenly even for one
// party), each embedded in one forward; every rank merges the chunks' statistics in chunk order
// and places the gathered subset features, so every rank returns the same RealStats, whatever
// the rank or thread count. fedgan::Error (on every rank) naming the file for a missing file,
// images that are not uint8 [N,C,H,W], or a shape the evaluator does not take.
RealStats compute_real_stats(comm::Communicator& comm, const std::string& dataset,
                             Evaluator& evaluator, const RealStatsOptions& options = {});

// Collective: rank 0 reads the cache when it matches (format, dataset path, size, mtime,
// evaluator checksum, subset size, seed and chunk) and broadcasts it; otherwise compute_real_stats
// and rank 0 writes the cache (atomically; a cache that cannot be written is a warning, not an
// error).
RealStats load_or_compute_real_stats(comm::Communicator& comm, const std::string& dataset,
                                     Evaluator& evaluator, const RealStatsOptions& options = {});

}  // namespace fedgan::eval
