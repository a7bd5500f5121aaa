// Round values (see include/fedgan/federated/round/update.hpp).
#include "fedgan/federated/round/update.hpp"

#include <cmath>

#include "fedgan/core/error.hpp"

namespace fedgan::federated {

SegmentLayout::SegmentLayout(std::vector<std::int64_t> sizes) : m_sizes(std::move(sizes)) {
  for (auto n : m_sizes) {
    require(n >= 0, "aggregator: a segment has a negative size");
    m_offsets.push_back(m_numel);
    m_numel += n;
  }
}

void SegmentLayout::check(const std::vector<torch::Tensor>& segments) const {
  require(segments.size() == m_sizes.size(), "aggregator: wrong number of segments");
  for (std::size_t i = 0; i < segments.size(); ++i)
    require(segments[i].numel() == m_sizes[i],
            "aggregator: segment " + std::to_string(i) + " has the wrong size");
}

torch::Tensor SegmentLayout::flatten(const std::vector<torch::Tensor>& segments) const {
  check(segments);
  std::vector<torch::Tensor> parts;
  for (const auto& s : segments) parts.push_back(s.to(torch::kCPU, torch::kFloat32).reshape({-1}));
  return torch::cat(parts).contiguous();
}

std::vector<torch::Tensor> SegmentLayout::split(const torch::Tensor& flat) const {
  require(flat.dim() == 1 && flat.numel() == m_numel,
          "aggregator: a flat vector of " + std::to_string(flat.numel()) + " values, expected " +
              std::to_string(m_numel));
  std::vector<torch::Tensor> views;
  for (std::size_t i = 0; i < m_sizes.size(); ++i)
    views.push_back(flat.narrow(0, m_offsets[i], m_sizes[i]));
  return views;
}

RoundTotals RoundTotals::of(const Update& update) {
  RoundTotals t;
  t.d_loss = update.d_loss;
  t.g_loss = update.g_loss;
  t.parties = 1;
  t.images = static_cast<double>(update.images);
  t.samples = static_cast<double>(update.samples);
  t.sample_steps = static_cast<double>(update.samples) * static_cast<double>(update.steps);
  t.ada_sign_sum = update.ada_sign_sum;
  t.ada_count = update.ada_count;
  return t;
}

RoundTotals RoundTotals::training_only() const {
  RoundTotals t;
  t.images = images;
  t.ada_sign_sum = ada_sign_sum;
  t.ada_count = ada_count;
  return t;
}

RoundTotals& RoundTotals::operator+=(const RoundTotals& other) {
  d_loss += other.d_loss;
  g_loss += other.g_loss;
  parties += other.parties;
  images += other.images;
  samples += other.samples;
  sample_steps += other.sample_steps;
  ada_sign_sum += other.ada_sign_sum;
  ada_count += other.ada_count;
  return *this;
}

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
  if (!coordinate_weight.empty()) {
    const auto& w = coordinate_weight.at(segment);
    return torch::where(w > 0, sums.at(segment) / w.clamp_min(1e-300), torch::zeros_like(w))
        .to(torch::kFloat32);
  }
  return (sums.at(segment) / denominator).to(torch::kFloat32);
}

}  // namespace fedgan::federated
