// ServerStep: how the global model moves given the round's aggregate. Trainable parameters
// follow the server optimizer (FedAvg, FedAvgM, FedAdam: server_optimizer.hpp), one for G and
// one for D; aggregated buffers (BatchNorm statistics) take the plain mean. Frozen values are
// not in the plans' indices and are never written. Every rank applies the same step to the
// same inputs, so the global models stay equal without a broadcast.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

#include "fedgan/federated/server/server_optimizer.hpp"
#include "fedgan/federated/round/update.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/transfer/freeze_policy.hpp"

namespace fedgan::federated {

// The freeze plans of G and D: which flat indices are trained and aggregated.
struct ModelPlans {
  transfer::ParameterPlan g, d;
  // Values per Segment (kGParams, kGBuffers, kDParams, kDBuffers).
  std::vector<std::int64_t> segment_sizes() const;
  std::int64_t aggregated_numel() const;
};

class ServerStep {
 public:
  ServerStep(const ServerOptimizerConfig& config, std::shared_ptr<const ModelPlans> plans);
  // global ← server step with the aggregate's mean (requires aggregate.denominator > 0).
  void apply(models::Gan& global, const AggregateResult& aggregate);
  // Scales the mean parameter update the server optimizer gets (the controller's server-lr rule:
  // for fedavg and fedavgm the server learning rate × scale); BatchNorm statistics unscaled.
  void set_lr_scale(double scale) { m_lr_scale = scale; }
  // Server optimizer state ("g/…", "d/…") for checkpoints, and its restore.
  std::map<std::string, torch::Tensor> state() const;
  void load_state(const std::map<std::string, torch::Tensor>& state, const torch::Device& device);

 private:
  std::shared_ptr<const ModelPlans> m_plans;
  std::unique_ptr<ServerOptimizer> m_g, m_d;
  double m_lr_scale = 1.0;
};

}  // namespace fedgan::federated
