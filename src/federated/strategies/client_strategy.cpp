// Client strategies (see include/fedgan/federated/strategies/client_strategy.hpp).
#include "fedgan/federated/strategies/client_strategy.hpp"

#include <cmath>

#include "fedgan/core/error.hpp"
#include "fedgan/io/checkpoint_keys.hpp"

namespace fedgan::federated {

const ChoiceTable<Choice<ClientStrategy>>& client_strategies() {
  static const Choice<ClientStrategy> entries[] = {
      {ClientStrategy::FedAvg, "fedavg", ""},
      {ClientStrategy::FedNova, "fednova",
       "normalised averaging over unequal local step counts, Wang et al. 2020"},
      {ClientStrategy::Scaffold, "scaffold", "control variates, Karimireddy et al. 2020"},
  };
  static const ChoiceTable<Choice<ClientStrategy>> table(entries, "--client-strategy", "strategy");
  return table;
}

ClientStrategy parse_client_strategy(const std::string& name) {
  return client_strategies().parse(name).value;
}

std::string to_string(ClientStrategy strategy) { return client_strategies().name(strategy); }

// --- FedProx ---------------------------------------------------------------------------------

FedProxRegularizer::FedProxRegularizer(double mu) : m_mu(mu) {
  require(mu >= 0 && std::isfinite(mu), "--prox-mu must be a finite number >= 0");
}

void FedProxRegularizer::begin_party(const train::PartyStart& start) { m_global = start.global; }

void FedProxRegularizer::before_step(train::Net net, const torch::Tensor& params,
                                     torch::Tensor& grad) {
  require(m_global != nullptr, "FedProx: no global model (begin_party was not called)");
  const auto& anchor = net == train::Net::Generator ? m_global->g_flat() : m_global->d_flat();
  torch::NoGradGuard no_grad;
  // ∇ μ/2·‖w − w_global‖² = μ(w − w_global).
  grad.add_(params - anchor.parameters_view(), m_mu);
}

// --- FedNova ---------------------------------------------------------------------------------

double FedNovaTransform::factor(int party, const RoundContext& round) {
  require(round.party_samples && round.party_steps,
          "FedNova: the round has no party table (samples and planned steps)");
  const auto& n = *round.party_samples;
  const auto& tau = *round.party_steps;
  // Integers, exact in float64 far beyond any real run (2^53).
  double sum_n = 0, sum_n_tau = 0;
  for (int k : round.participants) {
    sum_n += static_cast<double>(n.at(k));
    sum_n_tau += static_cast<double>(n.at(k)) * static_cast<double>(tau.at(k));
  }
  const double tau_eff = sum_n_tau / sum_n;
  return tau_eff / static_cast<double>(tau.at(party));
}

void FedNovaTransform::apply(Update& u, const RoundContext& round) {
  const auto planned = round.party_steps->at(u.party);
  require(u.steps == planned, "FedNova: party " + std::to_string(u.party) + " ran " +
                                  std::to_string(u.steps) + " local steps, planned " +
                                  std::to_string(planned));
  const double f = factor(u.party, round);
  torch::NoGradGuard no_grad;
  // Applied even when f == 1 (x·1 = x exactly): equal steps give FedAvg bit for bit.
  u.segments[kGParams].mul_(f);
  u.segments[kDParams].mul_(f);
}

// --- SCAFFOLD --------------------------------------------------------------------------------

namespace {
constexpr int kG = 0, kD = 1;
const char* const kVariateNames[2] = {io::keys::kScaffoldCG, io::keys::kScaffoldCD};
const char* const kPartyVariateNames[2] = {io::keys::kPartyScaffoldCG,
                                            io::keys::kPartyScaffoldCD};
}  // namespace

class ScaffoldRegularizer final : public train::Regularizer {
 public:
  explicit ScaffoldRegularizer(Scaffold& s) : m_s(s) {}
  void begin_party(const train::PartyStart& start) override {
    auto& s = m_s;
    s.m_current = start.party;
    for (int net : {kG, kD}) {
      const auto& plan = net == kG ? s.m_plans->g : s.m_plans->d;
      const auto& flat = net == kG ? start.global->g_flat() : start.global->d_flat();
      // (c − c_k)·η·s, scattered over the whole parameter view (zero where not aggregated).
      auto corr = torch::zeros({flat.parameter_numel()}, s.m_c[net].options());
      corr.index_copy_(0, plan.param_index,
                       (s.m_c[net] - s.party_variate(start.party, net)) * s.m_step_scale[net]);
      s.m_correction[net] = corr;
    }
  }
  void after_step(train::Net net, const torch::Tensor& params) override {
    torch::NoGradGuard no_grad;
    // y ← y − η·s·(c − c_k): with zero variates this adds −0 to every value, leaving it equal.
    params.sub_(m_s.m_correction[net == train::Net::Generator ? kG : kD]);
  }

 private:
  Scaffold& m_s;
};

class ScaffoldUpdate final : public UpdateTransform {
 public:
  explicit ScaffoldUpdate(Scaffold& s) : m_s(s) {}
  std::string name() const override { return to_string(ClientStrategy::Scaffold); }
  void apply(Update& u, const RoundContext& round) override {
    auto& s = m_s;
    s.open_round(round.round);  // a new round (or one after an abandoned one)
    torch::NoGradGuard no_grad;
    Scaffold::PartyVariates next;
    std::int64_t offset = 0;
    for (int net : {kG, kD}) {
      const auto& delta = u.segments[net == kG ? kGParams : kDParams];
      const double k = static_cast<double>(u.steps) * (net == kD ? s.m_d_steps : 1);
      require(k > 0, "SCAFFOLD: party " + std::to_string(u.party) + " ran no local step");
      // c_k⁺ = c_k − c + (x − y)/(K·η·s), x − y = −Δ; elements with s = 0 never move.
      const auto scale = s.m_step_scale[net];
      const auto drift =
          torch::where(scale > 0, -delta / (scale * k), torch::zeros_like(delta));
      const auto old = s.party_variate(u.party, net);
      next.c[net] = old - s.m_c[net] + drift;
      s.m_delta_sum.narrow(0, offset, delta.numel())
          .add_((next.c[net] - old).to(torch::kFloat64));
      offset += delta.numel();
    }
    s.m_pending[u.party] = next;
  }

 private:
  Scaffold& m_s;
};

class ScaffoldAggregate final : public AggregateTransform {
 public:
  ScaffoldAggregate(Scaffold& s, comm::Communicator& comm) : m_s(s), m_comm(comm) {}
  std::string name() const override { return to_string(ClientStrategy::Scaffold); }
  void apply(AggregateResult&, const RoundContext& round) override {
    auto& s = m_s;
    s.open_round(round.round);  // also when this rank trained no party this round
    m_comm.allreduce_sum(s.m_delta_sum);
    torch::NoGradGuard no_grad;
    std::int64_t offset = 0;
    for (int net : {kG, kD}) {
      const auto n = s.m_c[net].numel();
      s.m_c[net].add_((s.m_delta_sum.narrow(0, offset, n) / s.m_total).to(torch::kFloat32));
      offset += n;
    }
    for (auto& [party, v] : s.m_pending) s.m_parties[party] = v;
    s.m_pending.clear();
    s.m_pending_round = -1;
  }

 private:
  Scaffold& m_s;
  comm::Communicator& m_comm;
};

Scaffold::Scaffold(std::shared_ptr<const ModelPlans> plans, const train::LocalTrainConfig& local,
                   int total_parties, const torch::Device& device)
    : m_plans(std::move(plans)),
      m_lr{local.lr_g, local.lr_d},
      m_d_steps(local.d_steps),
      m_total(total_parties),
      m_device(device) {
  require(total_parties > 0, "SCAFFOLD: no parties");
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  for (int net : {kG, kD}) {
    const auto& plan = net == kG ? m_plans->g : m_plans->d;
    const auto n = plan.param_index.numel();
    m_c[net] = torch::zeros({n}, f32);
    // η·s: the optimizer's step size at each aggregated parameter (s from the freeze plan).
    m_step_scale[net] = plan.lr_scale.defined()
                            ? plan.lr_scale.index_select(0, plan.param_index).to(f32) * m_lr[net]
                            : torch::full({n}, m_lr[net], f32);
  }
  m_delta_sum = torch::zeros({m_c[kG].numel() + m_c[kD].numel()},
                             torch::TensorOptions().dtype(torch::kFloat64).device(device));
}

void Scaffold::open_round(int round) {
  if (m_pending_round == round) return;
  m_pending.clear();
  m_delta_sum.zero_();
  m_pending_round = round;
}

torch::Tensor Scaffold::party_variate(int party, int net) const {
  const auto it = m_parties.find(party);
  if (it == m_parties.end() || !it->second.c[net].defined()) return torch::zeros_like(m_c[net]);
  return it->second.c[net];
}

std::shared_ptr<train::Regularizer> Scaffold::regularizer() {
  return std::make_shared<ScaffoldRegularizer>(*this);
}

std::unique_ptr<UpdateTransform> Scaffold::update_transform() {
  return std::make_unique<ScaffoldUpdate>(*this);
}

std::unique_ptr<AggregateTransform> Scaffold::aggregate_transform(comm::Communicator& comm) {
  return std::make_unique<ScaffoldAggregate>(*this, comm);
}

std::map<std::string, torch::Tensor> Scaffold::server_state() const {
  std::map<std::string, torch::Tensor> out;
  for (int net : {kG, kD}) out[std::string(io::keys::kScaffold) + kVariateNames[net]] = m_c[net];
  return out;
}

void Scaffold::load_server_state(const std::map<std::string, torch::Tensor>& state) {
  for (int net : {kG, kD}) {
    const auto it = state.find(std::string(io::keys::kScaffold) + kVariateNames[net]);
    if (it == state.end()) continue;
    require(it->second.numel() == m_c[net].numel(),
            "checkpoint: SCAFFOLD server variate of another model");
    m_c[net] = it->second.to(m_device, torch::kFloat32, false, true).reshape({-1});
  }
}

std::map<std::string, torch::Tensor> Scaffold::party_state() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [party, v] : m_parties)
    for (int net : {kG, kD})
      if (v.c[net].defined()) out[io::keys::party_prefix(party) + kPartyVariateNames[net]] = v.c[net];
  return out;
}

void Scaffold::load_party_state(const std::map<std::string, torch::Tensor>& state,
                                const std::vector<int>& ids) {
  for (int party : ids) {
    PartyVariates v;
    bool any = false;
    for (int net : {kG, kD}) {
      const auto it = state.find(io::keys::party_prefix(party) + kPartyVariateNames[net]);
      if (it == state.end()) continue;
      require(it->second.numel() == m_c[net].numel(),
              "checkpoint: SCAFFOLD variate of party " + std::to_string(party) +
                  " of another model");
      v.c[net] = it->second.to(m_device, torch::kFloat32, false, true).reshape({-1});
      any = true;
    }
    if (any) m_parties[party] = v;
  }
}

}  // namespace fedgan::federated
