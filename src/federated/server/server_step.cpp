// The server step (see include/fedgan/federated/server/server_step.hpp).
#include "fedgan/federated/server/server_step.hpp"

#include "fedgan/io/checkpoint_keys.hpp"

namespace fedgan::federated {
namespace {

void step_model(models::FlatParameters& flat, const transfer::ParameterPlan& plan,
                ServerOptimizer& opt, const torch::Tensor& mean_params,
                const torch::Tensor& mean_buffers) {
  auto values = flat.flat().index_select(0, plan.param_index);
  opt.apply(values, mean_params);
  flat.flat().index_copy_(0, plan.param_index, values);
  flat.flat().index_add_(0, plan.buffer_index, mean_buffers);
}

}  // namespace

std::vector<std::int64_t> ModelPlans::segment_sizes() const {
  return {g.param_index.numel(), g.buffer_index.numel(), d.param_index.numel(),
          d.buffer_index.numel()};
}

std::int64_t ModelPlans::aggregated_numel() const {
  std::int64_t n = 0;
  for (auto s : segment_sizes()) n += s;
  return n;
}

ServerStep::ServerStep(const ServerOptimizerConfig& config,
                       std::shared_ptr<const ModelPlans> plans)
    : m_plans(std::move(plans)),
      m_g(make_server_optimizer(config)),
      m_d(make_server_optimizer(config)) {}

void ServerStep::apply(models::Gan& global, const AggregateResult& aggregate) {
  torch::NoGradGuard no_grad;
  auto params = [&](Segment s) {
    return m_lr_scale == 1.0 ? aggregate.mean(s) : aggregate.mean(s) * m_lr_scale;
  };
  step_model(global.g_flat(), m_plans->g, *m_g, params(kGParams), aggregate.mean(kGBuffers));
  step_model(global.d_flat(), m_plans->d, *m_d, params(kDParams), aggregate.mean(kDBuffers));
}

std::map<std::string, torch::Tensor> ServerStep::state() const {
  std::map<std::string, torch::Tensor> out;
  for (auto& [k, v] : m_g->state()) out[io::keys::kServerG + k] = v;
  for (auto& [k, v] : m_d->state()) out[io::keys::kServerD + k] = v;
  return out;
}

void ServerStep::load_state(const std::map<std::string, torch::Tensor>& state,
                            const torch::Device& device) {
  std::map<std::string, torch::Tensor> g, d;
  const std::string gp = io::keys::kServerG, dp = io::keys::kServerD;
  for (auto& [k, v] : state) {
    if (k.rfind(gp, 0) == 0) g[k.substr(gp.size())] = v.to(device);
    if (k.rfind(dp, 0) == 0) d[k.substr(dp.size())] = v.to(device);
  }
  m_g->load_state(g);
  m_d->load_state(d);
}

}  // namespace fedgan::federated
