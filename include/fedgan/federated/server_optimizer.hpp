// Server optimizers: how the global model moves given the clients' weighted mean update Δ.
// FedAvg (McMahan et al. 2017), FedAvgM (Hsu et al. 2019), FedAdam (Reddi et al. 2021).
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

namespace fedgan::federated {

struct ServerOptimizerConfig {
  std::string name = "fedavg";  // fedavg | fedavgm | fedadam
  double lr = 1.0;
  double momentum = 0.9;  // fedavgm
  double beta1 = 0.9;     // fedadam
  double beta2 = 0.99;    // fedadam
  double tau = 1e-3;      // fedadam adaptivity
};

class ServerOptimizer {
 public:
  virtual ~ServerOptimizer() = default;
  virtual std::string name() const = 0;
  // global += step(mean_delta); both flat float32 of equal size.
  virtual void apply(torch::Tensor global, const torch::Tensor& mean_delta) = 0;
  // Named state tensors (for checkpoints); load_state restores them.
  virtual std::map<std::string, torch::Tensor> state() const { return {}; }
  virtual void load_state(const std::map<std::string, torch::Tensor>&) {}
};

std::unique_ptr<ServerOptimizer> make_server_optimizer(const ServerOptimizerConfig& config);

}  // namespace fedgan::federated
