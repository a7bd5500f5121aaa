// UA-GAN's combination of the parties' feedback (see
// include/fedgan/federated/distill/ua_feedback.hpp).
#include "fedgan/federated/distill/ua_feedback.hpp"

#include <cmath>

#include "fedgan/core/error.hpp"
#include "fedgan/federated/aggregation/robust_rules.hpp"

namespace fedgan::federated {

FeedbackCombination ua_combine(const torch::Tensor& party_logits, const torch::Tensor& pi) {
  require(party_logits.dim() == 2 && pi.dim() == 1 && pi.size(0) == party_logits.size(0) &&
              party_logits.size(0) > 0,
          "ua_combine: logits must be [m, B] with one weight per party");
  const auto s = party_logits.to(torch::kFloat64);
  const auto p = pi.to(torch::kFloat64);
  require((p > 0).all().item<bool>(), "ua_combine: party weights must be positive");
  // log π_j + s_j; logsumexp and softmax over the parties are stable for any logits.
  const auto a = s + (p / p.sum()).log().unsqueeze(1);
  FeedbackCombination out;
  out.logits = torch::logsumexp(a, 0);
  out.weights = torch::softmax(a, 0);
  const double b = static_cast<double>(s.size(1));
  // L = mean softplus(−ℓ)  →  ∂L/∂ℓ_i = −σ(−ℓ_i)/B.
  out.dloss = -torch::sigmoid(-out.logits) / b;
  out.g_loss = torch::nn::functional::softplus(-out.logits).mean().item<double>();
  out.cotangents = out.weights * out.dloss.unsqueeze(0);
  return out;
}

FeedbackCombination mean_combine(const torch::Tensor& party_logits, const torch::Tensor& pi) {
  require(party_logits.dim() == 2 && pi.dim() == 1 && pi.size(0) == party_logits.size(0) &&
              party_logits.size(0) > 0,
          "mean_combine: logits must be [m, B] with one weight per party");
  const auto s = party_logits.to(torch::kFloat64);
  const auto p = (pi.to(torch::kFloat64) / pi.to(torch::kFloat64).sum()).unsqueeze(1);
  const double b = static_cast<double>(s.size(1));
  FeedbackCombination out;
  out.logits = (p * s).sum(0);
  out.weights = p.expand_as(s).clone();
  out.dloss = -torch::sigmoid(-out.logits) / b;
  out.g_loss = (p.squeeze(1) * torch::nn::functional::softplus(-s).mean(1)).sum().item<double>();
  out.cotangents = p * (-torch::sigmoid(-s) / b);
  return out;
}

torch::Tensor party_feedback(const torch::Tensor& logits, const torch::Tensor& images,
                             const torch::Tensor& cotangent) {
  auto grads = torch::autograd::grad({logits}, {images}, {cotangent.to(logits.dtype())},
                                     /*retain_graph=*/false, /*create_graph=*/false);
  return grads[0];
}

FeedbackAggregator::FeedbackAggregator(std::vector<std::int64_t> party_samples, bool bound_norms,
                                       FeedbackCombine combine)
    : m_party_samples(std::move(party_samples)), m_bound_norms(bound_norms), m_combine(combine) {}

void FeedbackAggregator::begin_step(const std::vector<int>& participants, std::int64_t batch) {
  require(!participants.empty() && batch > 0, "distill: a step needs participants and a batch");
  m_participants = participants;
  m_slot.clear();
  for (std::size_t i = 0; i < participants.size(); ++i) m_slot[participants[i]] = i;
  m_batch = batch;
  const auto m = static_cast<std::int64_t>(participants.size());
  m_buffer = torch::zeros({m * batch + m + 1}, torch::kFloat64);
  m_cotangents = torch::Tensor();
  m_feedback = torch::Tensor();
  m_held.clear();
  m_stop = false;
}

void FeedbackAggregator::add_logits(int party, const torch::Tensor& logits, double d_loss) {
  const auto it = m_slot.find(party);
  require(it != m_slot.end(), "distill: party " + std::to_string(party) + " does not take part");
  require(logits.numel() == m_batch, "distill: party " + std::to_string(party) + " gave " +
                                         std::to_string(logits.numel()) + " logits for " +
                                         std::to_string(m_batch) + " images");
  const auto row = static_cast<std::int64_t>(it->second);
  m_buffer.narrow(0, row * m_batch, m_batch)
      .copy_(logits.detach().reshape({-1}).to(torch::kCPU, torch::kFloat64));
  const auto m = static_cast<std::int64_t>(m_participants.size());
  m_buffer[m * m_batch + row] = d_loss;
}

FeedbackAggregator::LogitsOutcome FeedbackAggregator::reduce_logits(comm::Communicator& comm) {
  const auto m = static_cast<std::int64_t>(m_participants.size());
  m_buffer[m * m_batch + m] = m_stop ? 1.0 : 0.0;
  comm.allreduce_sum(m_buffer);
  LogitsOutcome out;
  out.stop = m_buffer[m * m_batch + m].item<double>() > 0;
  if (out.stop) return out;
  const auto logits = m_buffer.narrow(0, 0, m * m_batch).view({m, m_batch});
  const auto losses = m_buffer.narrow(0, m * m_batch, m);
  const auto bad = (~torch::isfinite(logits)).any(1) | ~torch::isfinite(losses);
  for (std::int64_t j = 0; j < m; ++j)
    if (bad[j].item<bool>()) {
      out.nonfinite_party = m_participants[static_cast<std::size_t>(j)];
      return out;
    }
  auto pi = torch::empty({m}, torch::kFloat64);
  for (std::int64_t j = 0; j < m; ++j)
    pi[j] = static_cast<double>(
        m_party_samples.at(static_cast<std::size_t>(m_participants[static_cast<std::size_t>(j)])));
  out.ua = m_combine == FeedbackCombine::Ua ? ua_combine(logits, pi) : mean_combine(logits, pi);
  out.d_loss_sum = losses.sum().item<double>();
  m_cotangents = out.ua.cotangents.to(torch::kFloat32);
  return out;
}

torch::Tensor FeedbackAggregator::cotangent(int party) const {
  require(m_cotangents.defined(), "distill: cotangents before reduce_logits");
  return m_cotangents[static_cast<std::int64_t>(m_slot.at(party))];
}

void FeedbackAggregator::add_feedback(int party, const torch::Tensor& feedback) {
  require(m_slot.count(party) == 1,
          "distill: party " + std::to_string(party) + " does not take part");
  const auto f = feedback.detach().to(torch::kCPU, torch::kFloat64);
  if (m_bound_norms) {
    m_held[party] = f;
    return;
  }
  m_feedback = m_feedback.defined() ? m_feedback + f : f.clone();
}

torch::Tensor FeedbackAggregator::reduce_feedback(comm::Communicator& comm,
                                                  const std::vector<std::int64_t>& shape) {
  if (m_bound_norms) {
    // Every participant's norm on every rank (its slot written by its rank: an exact sum).
    const auto m = static_cast<std::int64_t>(m_participants.size());
    auto norms = torch::zeros({m}, torch::kFloat64);
    for (const auto& [party, f] : m_held)
      norms[static_cast<std::int64_t>(m_slot.at(party))] = f.norm().item<double>();
    comm.allreduce_sum(norms);
    std::vector<double> all(static_cast<std::size_t>(m));
    for (std::int64_t j = 0; j < m; ++j) all[static_cast<std::size_t>(j)] = norms[j].item<double>();
    m_bound = median_of(all);
    m_clipped = 0;
    for (double n : all) m_clipped += n > m_bound ? 1 : 0;
    for (const auto& [party, f] : m_held) {
      const double n = all[m_slot.at(party)];
      const auto scaled = n > m_bound ? f * (m_bound / n) : f;
      m_feedback = m_feedback.defined() ? m_feedback + scaled : scaled.clone();
    }
  }
  // A rank without a participant this round contributes zeros.
  if (!m_feedback.defined()) m_feedback = torch::zeros(shape, torch::kFloat64);
  require(m_feedback.sizes().vec() == shape, "distill: feedback of another shape");
  m_feedback = m_feedback.contiguous();
  comm.allreduce_sum(m_feedback);
  return m_feedback.to(torch::kFloat32);
}

}  // namespace fedgan::federated
