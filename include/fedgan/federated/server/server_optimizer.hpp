// Server optimizers: how the global model moves given the clients' weighted mean update Δ.
// FedAvg (McMahan et al. 2017), FedAvgM (Hsu et al. 2019), FedAdam, FedYogi and FedAdagrad
// (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2): the adaptive three share
// m ← β1·m + (1 − β1)·Δ and x ← x + η·m / (√v + τ) and differ in v: Adam β2·v + (1 − β2)·Δ²,
// Yogi v − (1 − β2)·Δ²·sign(v − Δ²), Adagrad v + Δ². v starts at 0 (no bias correction).
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fedgan/core/choice.hpp"

namespace fedgan::federated {

enum class ServerOptimizerKind { FedAvg, FedAvgM, FedAdam, FedYogi, FedAdagrad };

struct ServerOptimizerConfig {
  ServerOptimizerKind kind = ServerOptimizerKind::FedAvg;
  double lr = 1.0;
  double momentum = 0.9;  // fedavgm
  double beta1 = 0.9;     // fedadam, fedyogi, fedadagrad
  double beta2 = 0.99;    // fedadam, fedyogi
  double tau = 1e-3;      // adaptivity of the three
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

// --server-optimizer: each optimizer's name, help and factory.
struct ServerOptimizerChoice {
  ServerOptimizerKind value;
  const char* name;
  const char* help;
  std::unique_ptr<ServerOptimizer> (*make)(const ServerOptimizerConfig& config);
};
const ChoiceTable<ServerOptimizerChoice>& server_optimizers();
// fedgan::Error naming --server-optimizer and the names for an unknown name.
ServerOptimizerKind parse_server_optimizer(const std::string& name);
std::string to_string(ServerOptimizerKind kind);

// The optimizer of config.kind; fedgan::Error for settings out of range.
std::unique_ptr<ServerOptimizer> make_server_optimizer(const ServerOptimizerConfig& config);

}  // namespace fedgan::federated
