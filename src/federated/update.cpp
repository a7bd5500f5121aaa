// Round values (see include/fedgan/federated/update.hpp).
#include "fedgan/federated/update.hpp"

#include <cmath>

#include "fedgan/core/error.hpp"

namespace fedgan::federated {

double update_norm(const Update& update) {
  double sq = 0;
  for (const auto& s : update.segments)
    if (s.numel() > 0) sq += s.to(torch::kFloat64).pow(2).sum().item<double>();
  return std::sqrt(sq);
}

void RoundTotals::to(double* slots) const {
  slots[0] = d_loss;
  slots[1] = g_loss;
  slots[2] = parties;
  slots[3] = images;
  slots[4] = samples;
  slots[5] = sample_steps;
}

void RoundTotals::from(const double* slots) {
  d_loss = slots[0];
  g_loss = slots[1];
  parties = slots[2];
  images = slots[3];
  samples = slots[4];
  sample_steps = slots[5];
}

torch::Tensor AggregateResult::mean(std::size_t segment) const {
  require(denominator > 0, "aggregator: no weight to average");
  return (sums.at(segment) / denominator).to(torch::kFloat32);
}

}  // namespace fedgan::federated
