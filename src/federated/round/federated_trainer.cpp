// The federated round loop (see include/fedgan/federated/round/federated_trainer.hpp).
#include "fedgan/federated/round/federated_trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "fedgan/comm/collective.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/federated/round/model_guard.hpp"
#include "fedgan/io/checkpoint_keys.hpp"

namespace fedgan::federated {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A table of fixed-width rows of which each rank holds its own (`mine`): every rank's values
// end to end, in rank order (one allgatherv).
template <class T>
std::vector<T> allgather_rows(comm::Communicator& comm, const std::vector<T>& mine) {
  std::vector<T> all;
  for (const auto& bytes : comm.allgatherv(mine.data(), mine.size() * sizeof(T))) {
    const std::size_t at = all.size(), n = bytes.size() / sizeof(T);
    all.resize(at + n);
    std::memcpy(all.data() + at, bytes.data(), n * sizeof(T));
  }
  return all;
}

}  // namespace

FederatedTrainer::FederatedTrainer(comm::Communicator& comm, const models::ModelConfig& model,
                                   train::LocalTrainConfig local, FederatedConfig config,
                                   std::vector<LocalParty> parties, int total_parties,
                                   DebugHooks debug)
    : m_comm(comm),
      m_config(std::move(config)),
      m_parties(std::move(parties)),
      m_total_parties(total_parties),
      m_ada(m_config.ada) {
  require(m_config.participation > 0 && m_config.participation <= 1,
          "participation must be in (0, 1]");
  torch::manual_seed(m_config.seed);
  const auto device = m_config.device;
  m_global = std::make_unique<models::Gan>(model, device);
  // Only trainable values are aggregated: frozen parameters never enter the aggregate.
  auto plans = std::make_shared<ModelPlans>();
  std::vector<std::string> matched;
  plans->g = transfer::make_plan(m_global->g_flat(), m_global->generator().block_prefixes(),
                                 m_config.freeze_g, "generator", &matched);
  plans->d = transfer::make_plan(m_global->d_flat(), m_global->discriminator().block_prefixes(),
                                 m_config.freeze_d, "discriminator", &matched);
  for (const auto* f : {&m_config.freeze_g, &m_config.freeze_d})
    for (const auto& pattern : f->train_only)
      require(std::find(matched.begin(), matched.end(), pattern) != matched.end(),
              "--train-only pattern '" + pattern + "' matches no parameter of G or D");
  require(plans->g.trainable_numel + plans->d.trainable_numel > 0,
          "fine-tuning: every parameter is frozen; nothing would train");
  for (auto* plan : {&plans->g, &plans->d}) {
    plan->param_index = plan->param_index.to(device);
    plan->buffer_index = plan->buffer_index.to(device);
    if (plan->lr_scale.defined()) plan->lr_scale = plan->lr_scale.to(device);
  }
  m_plans = plans;
  if (m_config.widths.active()) {
    require(static_cast<int>(m_config.widths.party_ratio.size()) == m_total_parties,
            "--width-ratios: " + std::to_string(m_config.widths.party_ratio.size()) +
                " ratios for " + std::to_string(m_total_parties) + " parties");
    m_widths = std::make_shared<WidthLevels>(m_config.widths, *m_global, *m_plans);
    require(m_config.widths.slicing != WidthSlicing::Rolling ||
                m_config.optimizer_state == OptimizerState::Reset,
            "--width-slicing rolling with --optimizer-state keep: a party's kept Adam moments "
            "belong to the channels of its last window, not to this round's");
  }
  PartyRunnerConfig runner{m_config.optimizer_state, m_config.local_bn, m_config.seed, device,
                           debug, m_config.attack, m_widths};
  m_runner = std::make_unique<PartyRunner>(model, std::move(local), runner, m_plans);
  m_server = std::make_unique<ServerStep>(m_config.server, m_plans);
  m_aggregator = m_config.aggregator_factory
                     ? m_config.aggregator_factory(m_plans->segment_sizes(), device, m_comm)
                     : make_aggregator(m_config.aggregator, m_plans->segment_sizes(), device, m_comm);
  if (m_widths) install_coverage();
  // Client strategies, installed first so their transforms see the raw updates.
  const auto& client = m_config.client;
  switch (client.strategy) {
    case ClientStrategy::Scaffold:
      m_scaffold = std::make_shared<Scaffold>(m_plans, m_runner->trainer().config(),
                                              m_total_parties, device);
      add_regularizer(m_scaffold->regularizer());
      add_update_transform(m_scaffold->update_transform());
      add_aggregate_transform(m_scaffold->aggregate_transform(m_comm));
      break;
    case ClientStrategy::FedNova:
      add_update_transform(std::make_unique<FedNovaTransform>());
      break;
    case ClientStrategy::FedAvg:
      break;
  }
  if (client.prox_mu > 0) add_regularizer(std::make_shared<FedProxRegularizer>(client.prox_mu));
  if (!m_config.controller.rules.empty())
    m_controller = std::make_unique<adapt::Controller>(m_config.controller, m_total_parties,
                                                       m_config.participation);
}

void FederatedTrainer::install_coverage() {
  std::vector<std::vector<torch::Tensor>> coverage;
  for (int l = 0; l < m_widths->levels(); ++l) coverage.push_back(m_widths->coverage(l));
  m_aggregator->set_coverage(std::move(coverage));
}

void FederatedTrainer::add_update_transform(std::unique_ptr<UpdateTransform> transform) {
  m_update_transforms.push_back(std::move(transform));
}

void FederatedTrainer::add_aggregate_transform(std::unique_ptr<AggregateTransform> transform) {
  m_aggregate_transforms.push_back(std::move(transform));
}

void FederatedTrainer::add_regularizer(std::shared_ptr<train::Regularizer> regularizer) {
  m_runner->trainer().add_regularizer(std::move(regularizer));
}

models::Gan& FederatedTrainer::snapshot_source() {
  if (m_source) return *m_source;
  m_source = std::make_unique<models::Gan>(m_global->config(), m_config.device);
  m_source->copy_from(*m_global);
  m_source->train(false);
  for (auto& p : m_source->generator().parameters()) p.requires_grad_(false);
  return *m_source;
}

void FederatedTrainer::broadcast_global(int root) {
  m_comm.broadcast(m_global->g_flat().flat(), root);
  m_comm.broadcast(m_global->d_flat().flat(), root);
}

RoundReport FederatedTrainer::run_round(int round, const std::function<bool()>& interrupted) {
  const auto t_round = Clock::now();
  RoundReport report;
  report.round = round;
  if (m_party_samples.empty()) gather_party_table();
  const bool async = m_config.pacing.async();
  const RoundContext context = async ? buffer_context(round) : round_context(round);
  // Rolling width slices move every round; the aggregate follows their coverage.
  if (m_widths && m_widths->begin_round(round)) install_coverage();
  m_aggregator->begin_round(context);
  m_runner->trainer().set_augment_probability(m_ada.probability());

  const LocalRound local =
      async ? train_buffer(context, interrupted) : train_parties(context, interrupted);
  if (!agree(local, report)) {
    m_runner->restore_round();
    m_schedule.reset();  // replayed again to this round if the round is run again
    report.wall_s = seconds_since(t_round);
    return report;
  }
  gather_party_times(local, report);

  const auto t_aggregate = Clock::now();
  AggregateResult aggregate = m_aggregator->finish(m_comm);
  for (auto& t : m_aggregate_transforms) t->apply(aggregate, context);
  // FedBuff: Σ s(τ_k)·w_k·Δ_k over Σ w_k (w_k = n_k, × the balance factor), so a stale update
  // counts less instead of the others counting more (a rule that does not average keeps its
  // own denominator). Every rank knows each arrival's w_k and, from the party table, whether it
  // was aggregated.
  if (async && aggregate.denominator == aggregate.total_weight) {
    double unscaled = 0;
    for (const auto& t : report.party_times)
      if (t.finite) unscaled += arrival_weight(t.party);
    if (unscaled > 0) aggregate.denominator = unscaled;
  }
  const auto& totals = aggregate.totals;
  report.parties = static_cast<std::int64_t>(totals.parties);
  report.abandoned = aggregate.abandoned;
  report.samples = static_cast<std::int64_t>(totals.samples);
  report.images = static_cast<std::int64_t>(totals.images);
  report.skipped =
      static_cast<std::int64_t>(async ? m_arrivals.size() : context.participants.size()) -
      report.parties;
  if (report.parties > 0) {
    report.d_loss = totals.d_loss / totals.parties;
    report.g_loss = totals.g_loss / totals.parties;
    // Every rank holds the same totals, so every rank moves p alike; the step is what one
    // party's D saw this round (ADA adjusts by the images D trained on).
    if (m_ada.enabled())
      report.ada_r =
          m_ada.update(totals.ada_sign_sum, totals.ada_count, totals.images / totals.parties);
  }
  report.ada_p = m_ada.probability();
  if (report.parties > 0 && aggregate.denominator != 0) {
    double square = 0;
    for (const auto seg : {kGParams, kDParams})
      if (aggregate.sums[seg].numel() > 0)
        square += aggregate.mean(seg).to(torch::kFloat64).square().sum().item<double>();
    report.mean_update_norm = std::sqrt(square);
  }
  // An abandoned round (secure aggregation lost too many parties) releases nothing.
  const bool step =
      aggregate.abandoned.empty() && (report.parties > 0 || aggregate.apply_when_empty);
  torch::Tensor g_before, d_before;  // put back if the step leaves an unusable model
  if (step) {
    g_before = m_global->g_flat().snapshot();
    d_before = m_global->d_flat().snapshot();
    m_server->apply(*m_global, aggregate);
    // Static BN under width levels: G's statistics from its own activations (no party sent any).
    if (m_widths && m_widths->config().bn == WidthBn::Static)
      models::recompute_generator_bn(*m_global, static_bn_seed(m_config.seed));
  }
  if (m_config.after_server_step) m_config.after_server_step(*m_global);
  if (step) check_global_model(report, aggregate, g_before, d_before);
  if (async) keep_versions(round);
  report.aggregate_s = seconds_since(t_aggregate);
  report.wall_s = seconds_since(t_round);
  return report;
}

void FederatedTrainer::finish_context(RoundContext& context) const {
  for (const auto& p : m_parties)
    if (std::binary_search(context.participants.begin(), context.participants.end(), p.id))
      context.hosted.push_back(p.id);
  context.party_samples = &m_party_samples;
  context.party_steps = &m_party_steps;
}

RoundContext FederatedTrainer::round_context(int round) {
  RoundContext context;
  context.round = round;
  context.participants =
      m_config.poisson_sampling
          ? poisson_participants(m_total_parties, m_config.participation, m_config.seed, round)
          : sample_participants(m_total_parties, m_config.participation, m_config.seed, round);
  context.total_parties = m_total_parties;
  context.seed = m_config.seed;
  // Parties the controller quarantined sit the round out.
  if (!m_excluded.empty()) {
    std::vector<int> kept;
    for (int id : context.participants)
      if (!std::binary_search(m_excluded.begin(), m_excluded.end(), id)) kept.push_back(id);
    context.participants = std::move(kept);
  }
  const auto& pacing = m_config.pacing;
  if (!pacing.compute_aware() && m_controller) {
    // The controller's local-steps scale on the planned steps (at least one).
    for (std::size_t k = 0; k < m_party_steps.size(); ++k)
      m_party_steps[k] = std::max<std::int64_t>(
          1, std::llround(static_cast<double>(m_planned_steps[k]) * m_steps_scale));
  }
  if (pacing.compute_aware()) {
    // Steps from each party's step time: --sim-step-seconds × speed (given, so every rank
    // knows it), else its last measured time × speed (every rank learnt it in the last round's
    // allgather); a party not yet measured runs its planned steps (the first round calibrates).
    std::vector<int> kept;
    for (int id : context.participants) {
      const auto k = static_cast<std::size_t>(id);
      const double base = pacing.step_seconds > 0 ? pacing.step_seconds : m_measured_step[k];
      const std::int64_t steps =
          base > 0
              ? budget_steps(pacing.round_time_budget * m_steps_scale, base * pacing.speed_of(id))
              : m_planned_steps[k];
      m_party_steps[k] = steps;
      if (steps > 0) kept.push_back(id);
    }
    context.participants = std::move(kept);
  }
  finish_context(context);
  return context;
}

RoundContext FederatedTrainer::buffer_context(int round) {
  if (!m_schedule || m_schedule->version() != round - 1) {
    std::vector<double> speed;
    for (int k = 0; k < m_total_parties; ++k) speed.push_back(m_config.pacing.speed_of(k));
    m_balance = balance_factors(m_planned_steps, speed);
    m_schedule = std::make_unique<AsyncSchedule>(m_config.pacing.async_buffer, m_planned_steps,
                                                 std::move(speed));
    while (m_schedule->version() < round - 1) m_schedule->next_buffer();
  }
  if (m_versions.empty()) {  // the first buffer of a fresh run: everyone pulls the start model
    require(round == 1, "asynchronous aggregation: the model versions of round " +
                            std::to_string(round - 1) + " are missing (a checkpoint without them)");
    m_versions[0] = {m_global->g_flat().snapshot(), m_global->d_flat().snapshot()};
  }
  const double before = m_schedule->time();
  m_arrivals = m_schedule->next_buffer();
  m_sim_buffer_steps = m_schedule->time() - before;
  RoundContext context;
  context.round = round;
  for (const auto& a : m_arrivals) context.participants.push_back(a.party);
  std::sort(context.participants.begin(), context.participants.end());
  context.participants.erase(
      std::unique(context.participants.begin(), context.participants.end()),
      context.participants.end());
  context.total_parties = m_total_parties;
  context.seed = m_config.seed;
  finish_context(context);
  return context;
}

void FederatedTrainer::train_one(const LocalParty& party, const models::Gan& start,
                                 const RoundContext& round, std::int64_t steps,
                                 double weight_scale, std::int64_t staleness,
                                 const std::function<bool()>& interrupted, LocalRound& out) {
  const auto t0 = Clock::now();
  auto update = m_runner->run(party, start, round, interrupted, steps);
  if (!update) {
    out.stopped = true;
    return;
  }
  PartyTime time;
  time.party = party.id;
  time.steps = update->steps;
  time.seconds = seconds_since(t0);
  time.finite = update->finite;
  time.staleness = staleness;
  if (!update->finite) {
    if (out.first_bad_party < 0) out.first_bad_party = party.id;
    m_aggregator->add_skipped(*update);
    out.times.push_back(time);
    return;
  }
  if (&start != m_global.get()) {
    // A stale update's BatchNorm statistics: Δ against the model it started from would move
    // the current statistics by a difference of old ones (a variance can go negative); they are
    // rebased onto the current model, so the aggregate averages the parties' own statistics.
    torch::NoGradGuard no_grad;
    auto& u = *update;
    u.segments[kGBuffers] += start.g_flat().flat().index_select(0, m_plans->g.buffer_index) -
                             m_global->g_flat().flat().index_select(0, m_plans->g.buffer_index);
    u.segments[kDBuffers] += start.d_flat().flat().index_select(0, m_plans->d.buffer_index) -
                             m_global->d_flat().flat().index_select(0, m_plans->d.buffer_index);
  }
  double square = 0;  // over the parameters (BatchNorm statistics are not a step)
  for (const auto seg : {kGParams, kDParams})
    if (update->segments[seg].numel() > 0)
      square += update->segments[seg].to(torch::kFloat64).square().sum().item<double>();
  time.update_norm = std::sqrt(square);
  out.times.push_back(time);
  update->weight *= weight_scale;
  for (auto& t : m_update_transforms) t->apply(*update, round);
  m_aggregator->add(std::move(*update));
}

FederatedTrainer::LocalRound FederatedTrainer::train_parties(
    const RoundContext& round, const std::function<bool()>& interrupted) {
  const auto t0 = Clock::now();
  LocalRound out;
  m_runner->begin_round();
  const auto& ids = round.participants;
  for (const auto& party : m_parties) {
    if (interrupted && interrupted()) {
      out.stopped = true;
      break;
    }
    if (!std::binary_search(ids.begin(), ids.end(), party.id)) continue;
    // Pacing or the controller may set other steps than the planned ones (0: planned).
    const auto k = static_cast<std::size_t>(party.id);
    const std::int64_t steps = m_party_steps[k] != m_planned_steps[k] ? m_party_steps[k] : 0;
    train_one(party, *m_global, round, steps, 1.0, 0, interrupted, out);
    if (out.stopped) break;
  }
  out.seconds = seconds_since(t0);
  return out;
}

FederatedTrainer::LocalRound FederatedTrainer::train_buffer(
    const RoundContext& round, const std::function<bool()>& interrupted) {
  const auto t0 = Clock::now();
  LocalRound out;
  m_runner->begin_round();
  if (!m_start) m_start = std::make_unique<models::Gan>(m_global->config(), m_config.device);
  for (const auto& arrival : m_arrivals) {
    const auto party = std::find_if(m_parties.begin(), m_parties.end(),
                                    [&](const LocalParty& p) { return p.id == arrival.party; });
    if (party == m_parties.end()) continue;  // another rank's
    // A quarantined party's arrival is not trained on the replay: its update would be refused.
    if (std::binary_search(m_excluded.begin(), m_excluded.end(), arrival.party)) continue;
    if (interrupted && interrupted()) {
      out.stopped = true;
      break;
    }
    const std::int64_t staleness = round.round - 1 - arrival.start_version;
    if (staleness > 0) {
      torch::NoGradGuard no_grad;
      const auto& version = m_versions.at(arrival.start_version);
      m_start->g_flat().flat().copy_(version.first);
      m_start->d_flat().flat().copy_(version.second);
    }
    // The party's own session numbers its seeds and data order, as rounds do synchronously.
    RoundContext session = round;
    session.round = static_cast<int>(arrival.session);
    train_one(*party, staleness == 0 ? *m_global : *m_start, session, 0,
              staleness_weight(m_config.pacing.staleness, staleness) * balance_of(party->id),
              staleness, interrupted, out);
    if (out.stopped) break;
  }
  out.seconds = seconds_since(t0);
  return out;
}

void FederatedTrainer::gather_party_times(const LocalRound& local, RoundReport& report) {
  constexpr std::size_t kFields = 6;
  std::vector<double> mine;
  for (const auto& t : local.times)
    mine.insert(mine.end(), {static_cast<double>(t.party), static_cast<double>(t.steps),
                             t.seconds, m_config.share_update_norms ? t.update_norm : 0.0,
                             t.finite ? 1.0 : 0.0,
                             static_cast<double>(t.staleness)});
  std::vector<PartyTime> all;
  const auto rows = allgather_rows(m_comm, mine);
  for (std::size_t i = 0; i + kFields <= rows.size(); i += kFields) {
    PartyTime t;
    t.party = static_cast<int>(rows[i]);
    t.steps = static_cast<std::int64_t>(rows[i + 1]);
    t.seconds = rows[i + 2];
    t.update_norm = rows[i + 3];
    t.finite = rows[i + 4] != 0;
    t.staleness = static_cast<std::int64_t>(rows[i + 5]);
    all.push_back(t);
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const PartyTime& a, const PartyTime& b) { return a.party < b.party; });
  const auto& pacing = m_config.pacing;
  double measured_seconds = 0, measured_steps = 0;
  for (auto& t : all) {
    const double measured = t.steps > 0 ? t.seconds / static_cast<double>(t.steps) : 0;
    if (t.steps > 0) m_measured_step[static_cast<std::size_t>(t.party)] = measured;
    t.step_seconds = (pacing.step_seconds > 0 ? pacing.step_seconds : measured) *
                     pacing.speed_of(t.party);
    measured_seconds += t.seconds;
    measured_steps += static_cast<double>(t.steps);
  }
  // The round on the simulated clock: the slowest party's steps (synchronous), or the time
  // between this buffer's completion and the last one's (asynchronous) in factor-1 steps of
  // --sim-step-seconds or of the buffer's measured mean.
  double sim = 0;
  if (pacing.async()) {
    const double step = pacing.step_seconds > 0
                            ? pacing.step_seconds
                            : (measured_steps > 0 ? measured_seconds / measured_steps : 0);
    sim = m_sim_buffer_steps * step;
  } else {
    for (const auto& t : all) sim = std::max(sim, static_cast<double>(t.steps) * t.step_seconds);
  }
  m_sim_time += sim;
  report.sim_s = sim;
  report.sim_time_s = m_sim_time;
  report.party_times = std::move(all);
}

double FederatedTrainer::balance_of(int party) const {
  return m_config.pacing.weighting == ArrivalWeighting::Balanced
             ? m_balance[static_cast<std::size_t>(party)]
             : 1.0;
}

double FederatedTrainer::arrival_weight(int party) const {
  return static_cast<double>(m_party_samples[static_cast<std::size_t>(party)]) * balance_of(party);
}

void FederatedTrainer::keep_versions(int round) {
  const auto needed = m_schedule->versions_in_flight();
  if (std::binary_search(needed.begin(), needed.end(), static_cast<std::int64_t>(round)))
    m_versions[round] = {m_global->g_flat().snapshot(), m_global->d_flat().snapshot()};
  for (auto it = m_versions.begin(); it != m_versions.end();)
    it = std::binary_search(needed.begin(), needed.end(), it->first) ? std::next(it)
                                                                      : m_versions.erase(it);
}

namespace {

// What the ranks agree on after local training: the maximum over ranks of each field.
struct RoundAgreement {
  std::int64_t slowest_local_us = 0;
  std::int64_t lowest_bad_party = 0;  // P − the lowest non-finite party (0: none): max = lowest
  std::int64_t stop = 0;              // 1: a rank was asked to stop
};
constexpr std::int64_t RoundAgreement::*const kAgreementFields[] = {
    &RoundAgreement::slowest_local_us, &RoundAgreement::lowest_bad_party, &RoundAgreement::stop};

}  // namespace

bool FederatedTrainer::agree(const LocalRound& local, RoundReport& report) {
  const auto t0 = Clock::now();
  RoundAgreement agreed;
  agreed.slowest_local_us = static_cast<std::int64_t>(local.seconds * 1e6);
  agreed.lowest_bad_party =
      local.first_bad_party < 0 ? 0 : m_total_parties - local.first_bad_party;
  agreed.stop = local.stopped ? 1 : 0;
  comm::allreduce_max_fields(m_comm, agreed, kAgreementFields);
  report.wait_s = seconds_since(t0);
  if (agreed.stop > 0) {
    report.interrupted = true;
    return false;
  }
  report.local_s = static_cast<double>(agreed.slowest_local_us) * 1e-6;
  report.own_local_s = local.seconds;
  if (agreed.lowest_bad_party > 0 && !m_config.skip_nonfinite) {
    const int bad = m_total_parties - static_cast<int>(agreed.lowest_bad_party);
    throw Error("party " + std::to_string(bad) + " produced a non-finite update in round " +
                    std::to_string(report.round) +
                    "; the global model was not changed (use --skip-nonfinite to drop such "
                    "parties, or lower the learning rate)",
                /*collective=*/true);
  }
  return true;
}

void FederatedTrainer::check_global_model(const RoundReport& report,
                                          const AggregateResult& aggregate,
                                          const torch::Tensor& g_before,
                                          const torch::Tensor& d_before) {
  const ModelHealth health = inspect_model(*m_global);
  std::string message;
  if (!health.ok()) {
    RoundSuspects s;
    s.round = report.round;
    s.aggregator = m_aggregator->name();
    s.parties = report.parties;
    s.denominator = aggregate.denominator;
    auto max_abs_mean = [&](Segment params, Segment buffers) {
      double m = 0;
      for (auto seg : {params, buffers})
        if (aggregate.sums[seg].numel() > 0)
          m = std::max(m, aggregate.sums[seg].abs().max().item<double>() /
                              std::abs(aggregate.denominator));
      return m;
    };
    s.g_mean_max_abs = max_abs_mean(kGParams, kGBuffers);
    s.d_mean_max_abs = max_abs_mean(kDParams, kDBuffers);
    const auto& attack = m_config.attack;
    if (attack.active()) {
      std::string ids;
      for (int id : attack.attackers) ids += (ids.empty() ? "" : ",") + std::to_string(id);
      s.attack = attack_name(attack) + " by parties " + ids;
    }
    s.server_optimizer = to_string(m_config.server.kind);
    s.server_lr = m_config.server.lr;
    s.lr_g = m_runner->trainer().config().lr_g;
    s.lr_d = m_runner->trainer().config().lr_d;
    message = unusable_model_message(health, s);
  }
  try {
    // Every rank inspected the same model; agreeing costs one int64 and keeps ranks together
    // even if a probe's last bits differed between machines.
    m_comm.agree_ok(health.ok(), message);
  } catch (...) {
    torch::NoGradGuard no_grad;
    m_global->g_flat().flat().copy_(g_before);
    m_global->d_flat().flat().copy_(d_before);
    throw;
  }
}

void FederatedTrainer::gather_party_table() {
  std::vector<std::int64_t> mine;
  for (const auto& p : m_parties)
    mine.insert(mine.end(), {p.id, p.data->size(), m_runner->planned_steps(*p.data)});
  m_party_samples.assign(static_cast<std::size_t>(m_total_parties), 0);
  m_party_steps.assign(static_cast<std::size_t>(m_total_parties), 0);
  const auto rows = allgather_rows(m_comm, mine);
  for (std::size_t i = 0; i + 3 <= rows.size(); i += 3) {
    const auto id = static_cast<std::size_t>(rows[i]);
    require(id < m_party_samples.size(), "party table: party " + std::to_string(rows[i]) +
                                             " outside the " + std::to_string(m_total_parties) +
                                             " parties");
    m_party_samples[id] = rows[i + 1];
    m_party_steps[id] = rows[i + 2];
  }
  m_planned_steps = m_party_steps;
  if (m_measured_step.empty()) m_measured_step.assign(m_party_steps.size(), 0.0);
}

std::vector<adapt::Decision> FederatedTrainer::adapt(const RoundReport& report, double fid) {
  if (!m_controller || report.interrupted) return {};
  adapt::RoundSignals signals;
  signals.round = report.round;
  signals.d_loss = report.d_loss;
  signals.g_loss = report.g_loss;
  signals.fid = fid;
  signals.mean_update_norm = report.mean_update_norm;
  // One signal per party (a fast party may arrive twice in an asynchronous buffer: its
  // largest norm, finite only if every update was).
  for (const auto& t : report.party_times) {
    if (!signals.parties.empty() && signals.parties.back().party == t.party) {
      auto& last = signals.parties.back();
      last.steps += t.steps;
      last.update_norm = std::max(last.update_norm, t.update_norm);
      last.finite = last.finite && t.finite;
      continue;
    }
    signals.parties.push_back({t.party, t.steps, t.update_norm, t.finite});
  }
  auto decisions = m_controller->observe(signals);
  apply_controller_settings();
  return decisions;
}

void FederatedTrainer::apply_controller_settings() {
  const auto& s = m_controller->settings();
  m_steps_scale = s.local_steps_scale;
  m_config.participation = s.participation;
  m_excluded = s.excluded;
  m_server->set_lr_scale(s.server_lr_scale);
}

std::map<std::string, torch::Tensor> FederatedTrainer::server_state() const {
  auto out = m_server->state();
  if (m_scaffold)
    for (auto& [k, v] : m_scaffold->server_state()) out[k] = v;
  if (m_ada.enabled()) out[io::keys::kAdaP] = torch::tensor({m_ada.p()}, torch::kFloat64);
  const auto& pacing = m_config.pacing;
  if (pacing.active()) {
    out[io::keys::kSimTime] = torch::tensor({m_sim_time}, torch::kFloat64);
    if (!m_measured_step.empty())
      out[io::keys::kMeasuredStep] =
          torch::tensor(m_measured_step, torch::TensorOptions().dtype(torch::kFloat64));
  }
  if (m_controller)
    for (auto& [k, v] : m_controller->state()) out[k] = v;
  // Asynchronous: the model versions that parties in flight train from (the schedule itself
  // is replayed from the settings).
  for (const auto& [v, model] : m_versions) {
    out[io::keys::async_version(v, "g")] = model.first.to(torch::kCPU);
    out[io::keys::async_version(v, "d")] = model.second.to(torch::kCPU);
  }
  return out;
}

void FederatedTrainer::load_server_state(const std::map<std::string, torch::Tensor>& state) {
  m_server->load_state(state, m_config.device);
  if (m_scaffold) m_scaffold->load_server_state(state);
  if (auto it = state.find(io::keys::kAdaP); it != state.end() && m_ada.enabled())
    m_ada.set_p(it->second.to(torch::kCPU).item<double>());
  if (auto it = state.find(io::keys::kSimTime); it != state.end())
    m_sim_time = it->second.to(torch::kCPU).item<double>();
  if (auto it = state.find(io::keys::kMeasuredStep); it != state.end()) {
    const auto t = it->second.to(torch::kCPU).to(torch::kFloat64).contiguous();
    m_measured_step.assign(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
  }
  if (m_controller && state.count(io::keys::kControllerSettings) > 0) {
    m_controller->load_state(state);
    apply_controller_settings();
  }
  m_versions.clear();
  m_schedule.reset();
  const std::string prefix = io::keys::kAsyncVersion;
  for (const auto& [key, value] : state) {
    if (key.rfind(prefix, 0) != 0 || key.size() < prefix.size() + 3 || key.back() != 'g') continue;
    const std::string stem = key.substr(0, key.size() - 1);  // "async/version/<v>/"
    const auto v = std::stoll(stem.substr(prefix.size(), stem.size() - prefix.size() - 1));
    const auto d = state.find(stem + "d");
    require(d != state.end(), "checkpoint: async model version " + std::to_string(v) +
                                  " has a generator but no discriminator");
    require(value.numel() == m_global->g_flat().numel() &&
                d->second.numel() == m_global->d_flat().numel(),
            "checkpoint: async model version " + std::to_string(v) + " is of another model");
    m_versions[v] = {value.to(m_config.device).to(torch::kFloat32).clone(),
                     d->second.to(m_config.device).to(torch::kFloat32).clone()};
  }
}

std::map<std::string, torch::Tensor> FederatedTrainer::party_state_tensors() const {
  auto out = m_runner->state_tensors();
  if (m_scaffold)
    for (auto& [k, v] : m_scaffold->party_state()) out[k] = v;
  return out;
}

void FederatedTrainer::load_party_state_tensors(const std::map<std::string, torch::Tensor>& t) {
  std::vector<int> ids;
  for (const auto& p : m_parties) ids.push_back(p.id);
  m_runner->load_state_tensors(t, ids);
  if (m_scaffold) m_scaffold->load_party_state(t, ids);
}

}  // namespace fedgan::federated
