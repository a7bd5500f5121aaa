// One party's local round (see include/fedgan/federated/round/party_runner.hpp).
#include "fedgan/federated/round/party_runner.hpp"

#include <cmath>

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/data/random.hpp"
#include "fedgan/io/checkpoint_keys.hpp"
#include "fedgan/models/width.hpp"

namespace fedgan::federated {

const ChoiceTable<Choice<OptimizerState>>& optimizer_states() {
  static const Choice<OptimizerState> entries[] = {
      {OptimizerState::Reset, "reset", "fresh Adam each round"},
      {OptimizerState::Keep, "keep", "per-party Adam state across rounds"},
  };
  static const ChoiceTable<Choice<OptimizerState>> table(entries, "--optimizer-state",
                                                         "optimizer state");
  return table;
}

PartyRunner::PartyRunner(const models::ModelConfig& model, train::LocalTrainConfig local,
                         PartyRunnerConfig config, std::shared_ptr<const ModelPlans> plans)
    : m_config(std::move(config)),
      m_plans(std::move(plans)),
      m_local(std::make_unique<models::Gan>(model, m_config.device)),
      m_trainer(std::move(local)) {
  if (const auto& widths = m_config.widths) {
    for (int l = 0; l < widths->levels(); ++l) {
      m_level_models.push_back(std::make_unique<models::Gan>(widths->model(l), m_config.device));
      if (widths->config().scaler) models::set_width_scaler(*m_level_models.back(), widths->ratio(l));
    }
  }
}

models::Gan& PartyRunner::local_model(int level) {
  return m_config.widths ? *m_level_models.at(static_cast<std::size_t>(level)) : *m_local;
}

train::PartyOptimizers PartyRunner::new_optimizers(int level) {
  auto o = train::make_party_optimizers(local_model(level), m_trainer.config());
  // A sub-model's parameters are the global ones at its slice's first values.
  auto scale = [](const torch::Tensor& global_scale, const torch::Tensor& slice,
                  std::int64_t params) {
    return global_scale.index_select(0, slice.narrow(0, 0, params));
  };
  const models::WidthSlice* s = m_config.widths ? &m_config.widths->slice(level) : nullptr;
  if (!m_plans->g.identity)
    o.g.set_lr_scale(s ? scale(m_plans->g.lr_scale, s->g, s->g_params) : m_plans->g.lr_scale);
  if (!m_plans->d.identity)
    o.d.set_lr_scale(s ? scale(m_plans->d.lr_scale, s->d, s->d_params) : m_plans->d.lr_scale);
  return o;
}

void PartyRunner::begin_round() { m_backup.clear(); }

std::int64_t PartyRunner::planned_steps(const data::PartyData& data) const {
  const auto& c = m_trainer.config();
  if (c.local_steps > 0) return c.local_steps;
  return static_cast<std::int64_t>(c.local_epochs) * data.batches_per_epoch(c.batch_size);
}

std::optional<Update> PartyRunner::run(const LocalParty& party, const models::Gan& global,
                                       const RoundContext& round,
                                       const std::function<bool()>& interrupted,
                                       std::int64_t steps) {
  backup(party.id);
  // An entry in m_states only for a party that carries something across rounds: with
  // --optimizer-state reset and no --local-bn a party keeps nothing, and one Adam of the rank
  // serves every party in turn (an entry per party that ever trained held two Adam moments of G
  // and D each, 2 × 4 bytes per parameter, until the run ended).
  PartyState* state = has_state() ? &m_states[party.id] : nullptr;
  const auto& widths = m_config.widths;
  const int level = widths ? widths->level_of(party.id) : 0;
  models::Gan& local = local_model(level);
  if (widths) {
    models::copy_slice(global, widths->slice(level), local);
  } else {
    local.copy_from(global);
  }
  if (m_config.local_bn && state->g_buffers.defined()) {
    torch::NoGradGuard g;
    local.g_flat().buffers_view().copy_(state->g_buffers);
    local.d_flat().buffers_view().copy_(state->d_buffers);
  }
  train::PartyOptimizers* optimizers = nullptr;
  if (m_config.optimizer_state == OptimizerState::Keep) {
    if (!state->optimizers) state->optimizers = new_optimizers(level);
    optimizers = &*state->optimizers;
  } else {
    m_fresh_optimizers.reset();  // the previous party's moments go before the new ones exist
    m_fresh_optimizers = new_optimizers(level);
    optimizers = &*m_fresh_optimizers;
  }
  m_trainer.begin_party({party.id, round.round, &global});
  auto gen = compat::make_generator(data::derive_seed(m_config.seed,
                                             static_cast<std::uint64_t>(party.id) + 1,
                                             static_cast<std::uint64_t>(round.round)),
                                    m_config.device);
  const std::int64_t epochs_per_round =
      m_trainer.config().local_steps > 0 || steps > 0 ? 1000000 : m_trainer.config().local_epochs;
  const auto result =
      m_trainer.run(local, *optimizers, *party.data,
                    static_cast<std::int64_t>(round.round) * epochs_per_round, gen, interrupted,
                    steps);
  if (result.interrupted) return std::nullopt;
  if (party.id == m_config.debug.nan_party && round.round == m_config.debug.nan_round)
    local.g_flat().flat().fill_(std::nanf(""));

  Update u;
  u.party = party.id;
  u.samples = party.data->size();
  u.weight = static_cast<double>(u.samples);
  u.d_loss = result.d_loss;
  u.g_loss = result.g_loss;
  u.steps = result.steps;
  u.images = result.images;
  u.ada_sign_sum = result.ada_sign_sum;
  u.ada_count = result.ada_count;
  u.level = level;
  u.finite = result.finite && torch::isfinite(local.g_flat().flat()).all().item<bool>() &&
             torch::isfinite(local.d_flat().flat()).all().item<bool>();
  if (!u.finite) return u;
  if (m_config.local_bn) {
    state->g_buffers = local.g_flat().buffers_view().clone();
    state->d_buffers = local.d_flat().buffers_view().clone();
  }
  // Δ_k = local − global at the plans' indices (frozen values never travel). A sub-model's Δ
  // goes into the global layout first: 0 at every value it does not hold (its level's coverage
  // tells the aggregate not to count it there).
  auto delta = [&](const models::FlatParameters& mine, const models::FlatParameters& theirs,
                   const torch::Tensor& slice) {
    if (!widths) return mine.flat() - theirs.flat();
    auto out = torch::zeros_like(theirs.flat());
    out.index_copy_(0, slice, mine.flat() - theirs.flat().index_select(0, slice));
    return out;
  };
  const auto dg = delta(local.g_flat(), global.g_flat(), widths ? widths->slice(level).g : torch::Tensor());
  const auto dd = delta(local.d_flat(), global.d_flat(), widths ? widths->slice(level).d : torch::Tensor());
  u.segments = {dg.index_select(0, m_plans->g.param_index),
                dg.index_select(0, m_plans->g.buffer_index),
                dd.index_select(0, m_plans->d.param_index),
                dd.index_select(0, m_plans->d.buffer_index)};
  if (m_config.attack.attacks(party.id)) attack_update(u, round);
  return u;
}

void PartyRunner::attack_update(Update& u, const RoundContext& round) const {
  // The whole update as one flat float32 vector on the CPU (the attack's draws run over it in
  // one order), attacked, then cut back into the segments on the training device.
  const SegmentLayout layout(m_plans->segment_sizes());
  auto flat = layout.flatten(u.segments);
  apply_attack(m_config.attack, u.party, round.round, m_config.seed, flat.data_ptr<float>(),
               flat.numel());
  flat = flat.to(m_config.device);
  u.segments = layout.split(flat);
  u.finite = torch::isfinite(flat).all().item<bool>();
}

bool PartyRunner::has_state() const {
  return m_config.optimizer_state == OptimizerState::Keep || m_config.local_bn;
}

void PartyRunner::save_state(int party, std::map<std::string, torch::Tensor>& out) const {
  using namespace io::keys;
  const auto it = m_states.find(party);
  if (it == m_states.end()) return;
  const auto& st = it->second;
  const std::string p = party_prefix(party);
  if (m_config.optimizer_state == OptimizerState::Keep && st.optimizers) {
    auto& o = *st.optimizers;
    out[p + kGExpAvg] = o.g.exp_avg();
    out[p + kGExpAvgSq] = o.g.exp_avg_sq();
    out[p + kGStep] = torch::tensor({o.g.step_count()}, torch::kInt64);
    out[p + kDExpAvg] = o.d.exp_avg();
    out[p + kDExpAvgSq] = o.d.exp_avg_sq();
    out[p + kDStep] = torch::tensor({o.d.step_count()}, torch::kInt64);
  }
  if (m_config.local_bn && st.g_buffers.defined()) {
    out[p + io::keys::kGBuffers] = st.g_buffers;
    out[p + io::keys::kDBuffers] = st.d_buffers;
  }
}

void PartyRunner::load_state(int party, const std::map<std::string, torch::Tensor>& t) {
  using namespace io::keys;
  auto get = [&](const std::string& key) {
    auto it = t.find(key);
    return it == t.end() ? torch::Tensor() : it->second;
  };
  const std::string p = party_prefix(party);
  auto& st = m_states[party];
  if (auto gm = get(p + kGExpAvg);
      gm.defined() && m_config.optimizer_state == OptimizerState::Keep) {
    st.optimizers = new_optimizers(m_config.widths ? m_config.widths->level_of(party) : 0);
    auto& o = *st.optimizers;
    require(gm.numel() == o.g.exp_avg().numel(), "checkpoint: party state of another model");
    o.g.exp_avg().copy_(gm.reshape(o.g.exp_avg().sizes()));
    o.g.exp_avg_sq().copy_(get(p + kGExpAvgSq).reshape(o.g.exp_avg().sizes()));
    o.g.set_step_count(get(p + kGStep).item<std::int64_t>());
    o.d.exp_avg().copy_(get(p + kDExpAvg).reshape(o.d.exp_avg().sizes()));
    o.d.exp_avg_sq().copy_(get(p + kDExpAvgSq).reshape(o.d.exp_avg().sizes()));
    o.d.set_step_count(get(p + kDStep).item<std::int64_t>());
  }
  if (auto gb = get(p + io::keys::kGBuffers); gb.defined() && m_config.local_bn) {
    st.g_buffers = gb.to(m_config.device, /*non_blocking=*/false, /*copy=*/true);
    st.d_buffers = get(p + io::keys::kDBuffers).to(m_config.device, false, true);
  }
}

std::map<std::string, torch::Tensor> PartyRunner::state_tensors() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& entry : m_states) save_state(entry.first, out);
  return out;
}

void PartyRunner::load_state_tensors(const std::map<std::string, torch::Tensor>& t,
                                     const std::vector<int>& ids) {
  if (!has_state()) return;  // (SCAFFOLD's variates alone: nothing of the runner's)
  for (int id : ids) load_state(id, t);
}

void PartyRunner::backup(int party) {
  if (!has_state()) return;
  std::map<std::string, torch::Tensor> saved;
  save_state(party, saved);
  for (auto& entry : saved) entry.second = entry.second.clone();  // the live ones change
  m_backup[party] = std::move(saved);
}

void PartyRunner::restore_round() {
  torch::NoGradGuard no_grad;
  // A party without saved state (its first round) goes back to none; the others are loaded.
  for (const auto& [party, saved] : m_backup) {
    m_states[party] = PartyState{};
    load_state(party, saved);
  }
  m_backup.clear();
}

}  // namespace fedgan::federated
