// The robust rules of federated/robust.hpp as Aggregators (--aggregator median | trimmed-mean |
// krum | multi-krum | norm-bound): each keeps this rank's updates of the round (one flat float32
// copy per party, on the CPU) and aggregates them in finish() with robust_aggregate's
// collectives, plus one small allreduce of the round totals.
#pragma once

#include <memory>

#include "fedgan/federated/aggregation/aggregator.hpp"
#include "fedgan/federated/aggregation/robust.hpp"

namespace fedgan::federated {

std::unique_ptr<Aggregator> make_robust_aggregator(const AggregatorConfig& config,
                                                   std::vector<std::int64_t> segment_sizes,
                                                   const torch::Device& device);

}  // namespace fedgan::federated
