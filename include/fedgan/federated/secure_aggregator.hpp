// The aggregator of `--secure-agg`: FedAvg's weighted mean, formed from masked fixed-point
// updates (privacy/secure_aggregation.hpp) so that no rank sees another party's update, or any
// partial sum, in the clear. Made by make_aggregator when the config enables it.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/federated/aggregator.hpp"
#include "fedgan/privacy/secagg_config.hpp"

namespace fedgan::federated {

// `segment_sizes`: values per Segment. The update of each party is clamped to ±range (given, or
// from DP at the round's m: privacy::round_range), weighted
// (FedAvg's n_k, or whatever weight a transform set, at most n_k), encoded with a scale chosen
// per round from range·Σ n_k over the round's participants, masked and summed as uint64.
std::unique_ptr<Aggregator> make_secure_aggregator(const privacy::SecureAggConfig& config,
                                                   std::vector<std::int64_t> segment_sizes,
                                                   const torch::Device& device,
                                                   comm::Communicator& comm);

}  // namespace fedgan::federated
