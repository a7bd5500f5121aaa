// The aggregator of `--secure-agg`: FedAvg's weighted mean, formed from masked fixed-point
// updates (privacy/secure_aggregation.hpp) so that no rank sees another party's update, or any
// partial sum, in the clear. The run installs it as the round's aggregator factory under
// --secure-agg (run/training_run_setup.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/federated/aggregation/aggregator.hpp"
#include "fedgan/privacy/secagg_config.hpp"

namespace fedgan::privacy {

// `segment_sizes`: values per Segment. The update of each party is clamped to ±range (given, or
// from DP at the round's m: privacy::round_range), weighted
// (FedAvg's n_k, or whatever weight a transform set, at most n_k), encoded with a scale chosen
// per round from range·Σ n_k over the round's participants, masked and summed as uint64.
// `rule`: the --aggregator setting; anything but fedavg is refused (masked updates can only be
// summed), as is a config that check_secure_agg refuses.
std::unique_ptr<federated::Aggregator> make_secure_fedavg_aggregator(
    const SecureAggConfig& config, const federated::AggregatorConfig& rule,
    std::vector<std::int64_t> segment_sizes, const torch::Device& device,
    comm::Communicator& comm);

}  // namespace fedgan::privacy
