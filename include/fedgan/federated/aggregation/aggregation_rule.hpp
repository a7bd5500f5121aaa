// The aggregation rule of --aggregator and its settings: one config for FedAvg and the robust
// rules (federated/aggregation/robust.hpp). Its names, help and factories are the table
// aggregation_rules() (federated/aggregation/aggregator.hpp). LibTorch-free.
#pragma once

#include <string>

namespace fedgan::federated {

enum class AggregationRule { FedAvg, Median, TrimmedMean, Krum, MultiKrum, NormBound };

struct AggregatorConfig {
  AggregationRule rule = AggregationRule::FedAvg;
  // The robust rules' settings: trimmed-mean's β, Krum's f and Multi-Krum's m.
  double trim_beta = 0.1;  // trimmed mean: drop ⌊β·P⌋ values at each end; 0 ≤ β < 0.5
  int krum_f = 1;          // Krum: Byzantine parties tolerated; needs P > 2f + 2
  int krum_m = 0;          // Multi-Krum: updates averaged; 0 = P − f (capped at P − f)
};

// The rule's --aggregator name.
std::string to_string(AggregationRule rule);
// Every rule but FedAvg: those that need each party's update, not only the sum.
inline bool is_robust(AggregationRule rule) { return rule != AggregationRule::FedAvg; }

}  // namespace fedgan::federated
