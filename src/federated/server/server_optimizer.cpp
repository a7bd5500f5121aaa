// Server optimizers (see include/fedgan/federated/server/server_optimizer.hpp).
#include "fedgan/federated/server/server_optimizer.hpp"

#include <cmath>

#include "fedgan/core/error.hpp"

namespace fedgan::federated {
namespace {

class FedAvg final : public ServerOptimizer {
 public:
  explicit FedAvg(double lr) : m_lr(lr) {}
  std::string name() const override { return to_string(ServerOptimizerKind::FedAvg); }
  void apply(torch::Tensor global, const torch::Tensor& delta) override {
    torch::NoGradGuard g;
    if (m_lr == 1.0) {
      global.add_(delta);
    } else {
      global.add_(delta, m_lr);
    }
  }

 private:
  double m_lr;
};

class FedAvgM final : public ServerOptimizer {
 public:
  FedAvgM(double lr, double momentum) : m_lr(lr), m_momentum(momentum) {}
  std::string name() const override { return to_string(ServerOptimizerKind::FedAvgM); }
  void apply(torch::Tensor global, const torch::Tensor& delta) override {
    torch::NoGradGuard g;
    if (!m_velocity.defined()) m_velocity = torch::zeros_like(delta);
    m_velocity.mul_(m_momentum).add_(delta);
    global.add_(m_velocity, m_lr);
  }
  std::map<std::string, torch::Tensor> state() const override {
    if (!m_velocity.defined()) return {};
    return {{"velocity", m_velocity}};
  }
  void load_state(const std::map<std::string, torch::Tensor>& s) override {
    if (auto it = s.find("velocity"); it != s.end()) m_velocity = it->second.clone();
  }

 private:
  double m_lr, m_momentum;
  torch::Tensor m_velocity;
};

// FedAdam, FedYogi, FedAdagrad: one first moment, three second-moment rules.
class FedAdaptive final : public ServerOptimizer {
 public:
  FedAdaptive(const ServerOptimizerConfig& c) : m_c(c) {}
  std::string name() const override { return to_string(m_c.kind); }
  void apply(torch::Tensor global, const torch::Tensor& delta) override {
    torch::NoGradGuard g;
    if (!m_m.defined()) {
      m_m = torch::zeros_like(delta);
      m_v = torch::zeros_like(delta);
    }
    m_m.mul_(m_c.beta1).add_(delta, 1 - m_c.beta1);
    switch (m_c.kind) {
      case ServerOptimizerKind::FedAdam:
        m_v.mul_(m_c.beta2).addcmul_(delta, delta, 1 - m_c.beta2);
        break;
      case ServerOptimizerKind::FedYogi: {
        // v − (1 − β2)·Δ²·sign(v − Δ²), written as v + (1 − β2)·(Δ·sign(Δ² − v))·Δ so that
        // from v = 0 it is Adam's arithmetic exactly (sign 1, or 0 where Δ = 0).
        const auto s = torch::sign(delta * delta - m_v);
        m_v.addcmul_(delta * s, delta, 1 - m_c.beta2);
        break;
      }
      case ServerOptimizerKind::FedAdagrad:
        m_v.addcmul_(delta, delta, 1.0);
        break;
      case ServerOptimizerKind::FedAvg:
      case ServerOptimizerKind::FedAvgM:
        break;  // not adaptive: server_optimizers() makes them otherwise
    }
    global.addcdiv_(m_m, m_v.sqrt().add_(m_c.tau), m_c.lr);
  }
  std::map<std::string, torch::Tensor> state() const override {
    if (!m_m.defined()) return {};
    return {{"m", m_m}, {"v", m_v}};
  }
  void load_state(const std::map<std::string, torch::Tensor>& s) override {
    auto m = s.find("m"), v = s.find("v");
    if (m != s.end() && v != s.end()) {
      m_m = m->second.clone();
      m_v = v->second.clone();
    }
  }

 private:
  ServerOptimizerConfig m_c;
  torch::Tensor m_m, m_v;
};

std::unique_ptr<ServerOptimizer> make_adaptive(const ServerOptimizerConfig& c) {
  return std::make_unique<FedAdaptive>(c);
}

const ServerOptimizerChoice kServerOptimizerChoices[] = {
    {ServerOptimizerKind::FedAvg, "fedavg",
     "by --server-lr times it",
     [](const ServerOptimizerConfig& c) -> std::unique_ptr<ServerOptimizer> {
       return std::make_unique<FedAvg>(c.lr);
     }},
    {ServerOptimizerKind::FedAvgM, "fedavgm", "with --server-momentum, Hsu et al. 2019",
     [](const ServerOptimizerConfig& c) -> std::unique_ptr<ServerOptimizer> {
       return std::make_unique<FedAvgM>(c.lr, c.momentum);
     }},
    {ServerOptimizerKind::FedAdam, "fedadam", "Adam's second moment, Reddi et al. 2021",
     make_adaptive},
    {ServerOptimizerKind::FedYogi, "fedyogi", "Yogi's second moment, Reddi et al. 2021",
     make_adaptive},
    {ServerOptimizerKind::FedAdagrad, "fedadagrad", "Adagrad's second moment, Reddi et al. 2021",
     make_adaptive},
};

}  // namespace

const ChoiceTable<ServerOptimizerChoice>& server_optimizers() {
  static const ChoiceTable<ServerOptimizerChoice> table(kServerOptimizerChoices,
                                                        "--server-optimizer", "server optimizer");
  return table;
}

ServerOptimizerKind parse_server_optimizer(const std::string& name) {
  return server_optimizers().parse(name).value;
}

std::string to_string(ServerOptimizerKind kind) { return server_optimizers().name(kind); }

std::unique_ptr<ServerOptimizer> make_server_optimizer(const ServerOptimizerConfig& c) {
  // The CLI checks these too; a config made in code gets the same guard.
  require(c.lr > 0 && std::isfinite(c.lr), "server optimizer: lr must be a finite number > 0");
  require(c.momentum >= 0 && c.momentum < 1,
          "server optimizer: momentum must be in [0, 1) (a momentum >= 1 makes the steps grow "
          "without bound)");
  require(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1,
          "server optimizer: beta1 and beta2 must be in [0, 1)");
  require(c.tau > 0 && std::isfinite(c.tau), "server optimizer: tau must be a finite number > 0");
  return server_optimizers().of(c.kind).make(c);
}

}  // namespace fedgan::federated
