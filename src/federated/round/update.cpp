// Round values (see include/fedgan/federated/round/update.hpp).
#include "fedgan/federated/round/update.hpp"

#include <cmath>

#include "fedgan/core/error.hpp"

namespace fedgan::federated {

void RoundTotals::to(double* slots) const {
  slots[0] = d_loss;
  slots[1] = g_loss;
  slots[2] = parties;
  slots[3] = images;
  slots[4] = samples;
  slots[5] = sample_steps;
  slots[6] = ada_sign_sum;
  slots[7] = ada_count;
}

void RoundTotals::from(const double* slots) {
  d_loss = slots[0];
  g_loss = slots[1];
  parties = slots[2];
  images = slots[3];
  samples = slots[4];
  sample_steps = slots[5];
  ada_sign_sum = slots[6];
  ada_count = slots[7];
}

torch::Tensor AggregateResult::mean(std::size_t segment) const {
  require(denominator > 0, "aggregator: no weight to average");
  return (sums.at(segment) / denominator).to(torch::kFloat32);
}

}  // namespace fedgan::federated
