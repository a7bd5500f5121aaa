// The federated round loop (see include/fedgan/federated/federated_trainer.hpp).
#include "fedgan/federated/federated_trainer.hpp"

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

namespace fedgan::federated {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Statistics summed in the same collective as the models.
enum Slot { kDLoss = 0, kGLoss, kParties, kImages, kAdaSigns, kAdaCount, kSlots };

}  // namespace

std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  auto mix = [](std::uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  return mix(mix(mix(a) ^ b) ^ c);
}

std::vector<int> sample_participants(int total, double fraction, std::uint64_t seed, int round) {
  require(fraction > 0 && fraction <= 1, "participation must be in (0, 1]");
  const int k = std::clamp(static_cast<int>(std::ceil(fraction * total - 1e-9)), 1, total);
  std::vector<int> ids(total);
  for (int i = 0; i < total; ++i) ids[i] = i;
  if (k < total) {
    // Partial Fisher-Yates with our own integer draws: identical on every platform.
    std::mt19937_64 rng(mix_seed(seed, 0x5a3d, static_cast<std::uint64_t>(round)));
    for (int i = 0; i < k; ++i) {
      const auto j = i + static_cast<int>(rng() % static_cast<std::uint64_t>(total - i));
      std::swap(ids[i], ids[j]);
    }
    ids.resize(k);
    std::sort(ids.begin(), ids.end());
  }
  return ids;
}

FederatedTrainer::FederatedTrainer(comm::Communicator& comm, const models::ModelConfig& model,
                                   train::LocalTrainConfig local, FederatedConfig config,
                                   std::vector<LocalParty> parties, int total_parties)
    : m_comm(comm),
      m_trainer(std::move(local)),
      m_config(std::move(config)),
      m_parties(std::move(parties)),
      m_total_parties(total_parties),
      m_ada(m_config.ada) {
  require(m_config.optimizer_state == "reset" || m_config.optimizer_state == "keep",
          "optimizer_state must be reset or keep, not '" + m_config.optimizer_state + "'");
  require(m_config.participation > 0 && m_config.participation <= 1,
          "participation must be in (0, 1]");
  torch::manual_seed(m_config.seed);
  const auto device = m_config.device;
  m_global = std::make_unique<models::Gan>(model, device);
  m_local = std::make_unique<models::Gan>(model, device);
  m_server_g = make_server_optimizer(m_config.server);
  m_server_d = make_server_optimizer(m_config.server);
  // Only trainable values are aggregated: frozen parameters never enter the allreduce.
  std::vector<std::string> matched;
  m_g_plan = transfer::make_plan(m_global->g_flat(), m_global->generator().block_prefixes(),
                                 m_config.freeze_g, "generator", &matched);
  m_d_plan = transfer::make_plan(m_global->d_flat(), m_global->discriminator().block_prefixes(),
                                 m_config.freeze_d, "discriminator", &matched);
  for (const auto* f : {&m_config.freeze_g, &m_config.freeze_d})
    for (const auto& pattern : f->train_only)
      require(std::find(matched.begin(), matched.end(), pattern) != matched.end(),
              "--train-only pattern '" + pattern + "' matches no parameter of G or D");
  require(m_g_plan.trainable_numel + m_d_plan.trainable_numel > 0,
          "fine-tuning: every parameter is frozen; nothing would train");
  for (auto* plan : {&m_g_plan, &m_d_plan}) {
    plan->param_index = plan->param_index.to(device);
    plan->buffer_index = plan->buffer_index.to(device);
    if (plan->lr_scale.defined()) plan->lr_scale = plan->lr_scale.to(device);
  }
  m_aggregator = std::make_unique<FusedAggregator>(
      std::vector<std::int64_t>{m_g_plan.param_index.numel(), m_g_plan.buffer_index.numel(),
                                m_d_plan.param_index.numel(), m_d_plan.buffer_index.numel()},
      kSlots, device);
}

std::int64_t FederatedTrainer::aggregated_numel() const {
  return m_g_plan.param_index.numel() + m_g_plan.buffer_index.numel() +
         m_d_plan.param_index.numel() + m_d_plan.buffer_index.numel();
}

void FederatedTrainer::snapshot_teacher() {
  m_teacher = std::make_unique<models::Gan>(m_global->config(), m_config.device);
  m_teacher->copy_from(*m_global);
  m_teacher->train(false);
  for (auto& p : m_teacher->generator().parameters()) p.requires_grad_(false);
  m_trainer.set_teacher(m_teacher->generator_ptr());
}

void FederatedTrainer::broadcast_global(int root) {
  m_comm.broadcast(m_global->g_flat().flat(), root);
  m_comm.broadcast(m_global->d_flat().flat(), root);
}

RoundReport FederatedTrainer::run_round(int round, const std::function<bool()>& interrupted) {
  const auto t_round = Clock::now();
  RoundReport report;
  report.round = round;
  const auto participants =
      sample_participants(m_total_parties, m_config.participation, m_config.seed, round);
  m_aggregator->reset();
  m_round_backup.clear();
  auto extra = m_aggregator->stats();

  // Local training of this rank's participating parties, one after another.
  const auto t_local = Clock::now();
  std::int64_t first_bad_party = -1;
  bool stopped = false;
  for (auto& party : m_parties) {
    if (stopped || (interrupted && interrupted())) {
      stopped = true;
      break;
    }
    if (!std::binary_search(participants.begin(), participants.end(), party.id)) continue;
    backup_state(party.id);
    auto& state = m_states[party.id];
    m_local->copy_from(*m_global);
    if (m_config.local_bn && state.g_buffers.defined()) {
      torch::NoGradGuard g;
      m_local->g_flat().buffers_view().copy_(state.g_buffers);
      m_local->d_flat().buffers_view().copy_(state.d_buffers);
    }
    if (!state.optimizers || m_config.optimizer_state == "reset") {
      state.optimizers = new_party_optimizers();
    }
    m_trainer.set_round(round);
    m_trainer.set_augment_probability(m_ada.probability());
    auto gen = compat::make_generator(
        mix_seed(m_config.seed, static_cast<std::uint64_t>(party.id) + 1,
                 static_cast<std::uint64_t>(round)),
        m_config.device);
    const std::int64_t epochs_per_round =
        m_trainer.config().local_steps > 0 ? 1000000 : m_trainer.config().local_epochs;
    train::LocalResult result =
        m_trainer.run(*m_local, *state.optimizers, *party.data,
                      static_cast<std::int64_t>(round) * epochs_per_round, gen, interrupted);
    if (result.interrupted) {
      stopped = true;
      break;
    }
    if (party.id == m_config.debug_nan_party && round == m_config.debug_nan_round)
      m_local->g_flat().flat().fill_(std::nanf(""));
    const bool finite = result.finite && torch::isfinite(m_local->g_flat().flat()).all().item<bool>() &&
                        torch::isfinite(m_local->d_flat().flat()).all().item<bool>();
    report.images += result.images;
    if (!finite) {
      if (first_bad_party < 0) first_bad_party = party.id;
      report.skipped += 1;
      continue;
    }
    if (m_config.local_bn) {
      state.g_buffers = m_local->g_flat().buffers_view().clone();
      state.d_buffers = m_local->d_flat().buffers_view().clone();
    }
    // n_k·Δ_k in float64: exact products, so sums hardly depend on the order of ranks.
    const double n = static_cast<double>(party.data->size());
    const auto dg = m_local->g_flat().flat() - m_global->g_flat().flat();
    const auto dd = m_local->d_flat().flat() - m_global->d_flat().flat();
    m_aggregator->add({dg.index_select(0, m_g_plan.param_index),
                       dg.index_select(0, m_g_plan.buffer_index),
                       dd.index_select(0, m_d_plan.param_index),
                       dd.index_select(0, m_d_plan.buffer_index)},
                      n);
    extra[kDLoss] += result.d_loss;
    extra[kGLoss] += result.g_loss;
    extra[kParties] += 1;
    extra[kAdaSigns] += result.ada_sign_sum;
    extra[kAdaCount] += result.ada_count;
  }
  extra[kImages] += static_cast<double>(report.images);
  const double local_s = seconds_since(t_local);

  // Agreement before aggregation: slowest local time, skipped count, first non-finite party.
  const auto t_agg = Clock::now();
  std::int64_t agree[4] = {static_cast<std::int64_t>(local_s * 1e6), report.skipped,
                           first_bad_party < 0 ? 0 : m_total_parties - first_bad_party,
                           stopped ? 1 : 0};
  m_comm.allreduce_max(agree, 4);
  if (agree[3] > 0) {
    restore_round_backup();
    report.interrupted = true;
    report.wait_s = seconds_since(t_agg);
    report.wall_s = seconds_since(t_round);
    return report;
  }
  report.local_s = static_cast<double>(agree[0]) * 1e-6;
  report.own_local_s = local_s;
  if (agree[2] > 0 && !m_config.skip_nonfinite) {
    const int bad = m_total_parties - static_cast<int>(agree[2]);
    throw Error("party " + std::to_string(bad) + " produced a non-finite update in round " +
                    std::to_string(round) +
                    "; the global model was not changed (use --skip-nonfinite to drop such "
                    "parties, or lower the learning rate)",
                /*collective=*/true);
  }

  report.wait_s = seconds_since(t_agg);

  // The one fused collective of the round.
  const auto t_reduce = Clock::now();
  m_aggregator->allreduce(m_comm);
  report.parties = static_cast<std::int64_t>(extra[kParties].item<double>());
  report.samples = static_cast<std::int64_t>(m_aggregator->total_weight());
  report.images = static_cast<std::int64_t>(extra[kImages].item<double>());
  report.skipped = static_cast<std::int64_t>(participants.size()) - report.parties;
  if (report.parties > 0) {
    report.d_loss = extra[kDLoss].item<double>() / static_cast<double>(report.parties);
    report.g_loss = extra[kGLoss].item<double>() / static_cast<double>(report.parties);
    // Parameters follow the server optimizer; float buffers (BN statistics) are averaged.
    // Frozen values are not in the plan's indices and are never written.
    torch::NoGradGuard g;
    auto step = [](models::FlatParameters& flat, const transfer::ParameterPlan& plan,
                   ServerOptimizer& opt, const torch::Tensor& mean_params,
                   const torch::Tensor& mean_buffers) {
      auto values = flat.flat().index_select(0, plan.param_index);
      opt.apply(values, mean_params);
      flat.flat().index_copy_(0, plan.param_index, values);
      flat.flat().index_add_(0, plan.buffer_index, mean_buffers);
    };
    step(m_global->g_flat(), m_g_plan, *m_server_g, m_aggregator->mean(0), m_aggregator->mean(1));
    step(m_global->d_flat(), m_d_plan, *m_server_d, m_aggregator->mean(2), m_aggregator->mean(3));
  }
  if (m_ada.enabled() && report.parties > 0) {
    // Every rank holds the same sums, so every rank moves p alike. The step is what one party's
    // D saw this round (ADA adjusts by the images D trained on).
    report.ada_r =
        m_ada.update(extra[kAdaSigns].item<double>(), extra[kAdaCount].item<double>(),
                     static_cast<double>(report.images) / static_cast<double>(report.parties));
  }
  report.ada_p = m_ada.probability();
  report.aggregate_s = seconds_since(t_reduce);
  report.wall_s = seconds_since(t_round);
  return report;
}

std::map<std::string, torch::Tensor> FederatedTrainer::server_state() const {
  std::map<std::string, torch::Tensor> out;
  for (auto& [k, v] : m_server_g->state()) out["g/" + k] = v;
  for (auto& [k, v] : m_server_d->state()) out["d/" + k] = v;
  if (m_ada.enabled()) out["ada_p"] = torch::tensor({m_ada.p()}, torch::kFloat64);
  return out;
}

void FederatedTrainer::load_server_state(const std::map<std::string, torch::Tensor>& state) {
  std::map<std::string, torch::Tensor> g, d;
  for (auto& [k, v] : state) {
    if (k.rfind("g/", 0) == 0) g[k.substr(2)] = v.to(m_config.device);
    if (k.rfind("d/", 0) == 0) d[k.substr(2)] = v.to(m_config.device);
    if (k == "ada_p" && m_ada.enabled()) m_ada.set_p(v.to(torch::kCPU).item<double>());
  }
  m_server_g->load_state(g);
  m_server_d->load_state(d);
}

}  // namespace fedgan::federated

namespace fedgan::federated {

train::PartyOptimizers FederatedTrainer::new_party_optimizers() {
  auto o = train::make_party_optimizers(*m_local, m_trainer.config());
  if (!m_g_plan.identity) o.g.set_lr_scale(m_g_plan.lr_scale);
  if (!m_d_plan.identity) o.d.set_lr_scale(m_d_plan.lr_scale);
  return o;
}

void FederatedTrainer::save_party_state(int party,
                                        std::map<std::string, torch::Tensor>& out) const {
  const auto it = m_states.find(party);
  if (it == m_states.end()) return;
  const auto& st = it->second;
  const std::string p = "party/" + std::to_string(party) + "/";
  if (m_config.optimizer_state == "keep" && st.optimizers) {
    auto& o = *st.optimizers;
    out[p + "g_exp_avg"] = o.g.exp_avg();
    out[p + "g_exp_avg_sq"] = o.g.exp_avg_sq();
    out[p + "g_step"] = torch::tensor({o.g.step_count()}, torch::kInt64);
    out[p + "d_exp_avg"] = o.d.exp_avg();
    out[p + "d_exp_avg_sq"] = o.d.exp_avg_sq();
    out[p + "d_step"] = torch::tensor({o.d.step_count()}, torch::kInt64);
  }
  if (m_config.local_bn && st.g_buffers.defined()) {
    out[p + "g_buffers"] = st.g_buffers;
    out[p + "d_buffers"] = st.d_buffers;
  }
}

void FederatedTrainer::load_party_state(int party,
                                        const std::map<std::string, torch::Tensor>& t) {
  auto get = [&](const std::string& key) {
    auto it = t.find(key);
    return it == t.end() ? torch::Tensor() : it->second;
  };
  const std::string p = "party/" + std::to_string(party) + "/";
  auto& st = m_states[party];
  if (auto gm = get(p + "g_exp_avg"); gm.defined() && m_config.optimizer_state == "keep") {
    st.optimizers = new_party_optimizers();
    auto& o = *st.optimizers;
    require(gm.numel() == o.g.exp_avg().numel(), "checkpoint: party state of another model");
    o.g.exp_avg().copy_(gm.reshape(o.g.exp_avg().sizes()));
    o.g.exp_avg_sq().copy_(get(p + "g_exp_avg_sq").reshape(o.g.exp_avg().sizes()));
    o.g.set_step_count(get(p + "g_step").item<std::int64_t>());
    o.d.exp_avg().copy_(get(p + "d_exp_avg").reshape(o.d.exp_avg().sizes()));
    o.d.exp_avg_sq().copy_(get(p + "d_exp_avg_sq").reshape(o.d.exp_avg().sizes()));
    o.d.set_step_count(get(p + "d_step").item<std::int64_t>());
  }
  if (auto gb = get(p + "g_buffers"); gb.defined() && m_config.local_bn) {
    st.g_buffers = gb.to(m_config.device, /*non_blocking=*/false, /*copy=*/true);
    st.d_buffers = get(p + "d_buffers").to(m_config.device, false, true);
  }
}

std::map<std::string, torch::Tensor> FederatedTrainer::party_state_tensors() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& entry : m_states) save_party_state(entry.first, out);
  return out;
}

void FederatedTrainer::load_party_state_tensors(const std::map<std::string, torch::Tensor>& t) {
  for (const auto& party : m_parties) load_party_state(party.id, t);
}

void FederatedTrainer::backup_state(int party) {
  if (!has_party_state()) return;
  std::map<std::string, torch::Tensor> saved;
  save_party_state(party, saved);
  for (auto& entry : saved) entry.second = entry.second.clone();  // the live ones change
  m_round_backup[party] = std::move(saved);
}

void FederatedTrainer::restore_round_backup() {
  torch::NoGradGuard no_grad;
  // A party without saved state (its first round) goes back to none; the others are loaded.
  for (const auto& [party, saved] : m_round_backup) {
    m_states[party] = PartyState{};
    load_party_state(party, saved);
  }
  m_round_backup.clear();
}

}  // namespace fedgan::federated
