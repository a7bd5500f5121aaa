// The two hooks of a round around aggregation (docs/DESIGN.md, "Life of a round"):
// UpdateTransform changes one party's Update before it is aggregated, on the rank that hosts
// the party (SCAFFOLD's variates, FedNova's step normalisation, DP's clipping and noise share);
// AggregateTransform changes the aggregate once after the collective, identically on every rank
// (SCAFFOLD's server variates, DP's central noise and fixed denominator). Both run in the order
// they were added: the client strategy's first, then DP's. Secure aggregation's masking is not a
// transform: it is an aggregator (privacy/secure_fedavg.hpp).
#pragma once

#include <string>

#include "fedgan/federated/round/update.hpp"

namespace fedgan::federated {

class UpdateTransform {
 public:
  virtual ~UpdateTransform() = default;
  virtual std::string name() const = 0;
  // Runs on finite updates only (a non-finite update is stopped or skipped before this).
  virtual void apply(Update& update, const RoundContext& round) = 0;
};

class AggregateTransform {
 public:
  virtual ~AggregateTransform() = default;
  virtual std::string name() const = 0;
  // Every rank calls it with the same aggregate and must leave the same result (any draw is
  // seeded from the round, never from a rank-local state).
  virtual void apply(AggregateResult& aggregate, const RoundContext& round) = 0;
};

}  // namespace fedgan::federated
