// The round of federated distillation (see include/fedgan/federated/distill/distill_trainer.hpp).
#include "fedgan/federated/distill/distill_trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "fedgan/comm/collective.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/data/random.hpp"
#include "fedgan/federated/aggregation/aggregation_rule.hpp"
#include "fedgan/federated/attacks/attack.hpp"
#include "fedgan/federated/round/participation.hpp"
#include "fedgan/io/checkpoint_keys.hpp"
#include "fedgan/models/losses.hpp"
#include "fedgan/models/torchscript.hpp"
#include "fedgan/train/lr_schedule.hpp"

namespace fedgan::federated {
namespace {

using DistillClock = std::chrono::steady_clock;
double distill_seconds_since(DistillClock::time_point t0) {
  return std::chrono::duration<double>(DistillClock::now() - t0).count();
}

// Seeds of this file's draws (data::derive_seed of an ASCII word, as elsewhere).
constexpr std::uint64_t kPartyDSeed = 0x70646973;  // "pdis": party k's initial D weights
constexpr std::uint64_t kLatentSeed = 0x6473747a;  // "dstz": round t's latents of G

void set_distill_requires_grad(torch::nn::Module& m, bool on) {
  for (auto& p : m.parameters()) p.requires_grad_(on);
}

std::string spec_name(const DiscriminatorSpec* spec) {
  return spec == nullptr || spec->text.empty() ? "the run's D" : "'" + spec->text + "'";
}

}  // namespace

std::unique_ptr<PartyDiscriminator> make_party_discriminator(
    const models::ModelConfig& run_model, const DiscriminatorSpec* spec,
    const std::string& script_archive, int party, std::uint64_t seed, double lr_d, double beta1,
    double beta2, const torch::Device& device) {
  const std::string what = "--party-discriminators: party " + std::to_string(party) +
                           "'s discriminator " + spec_name(spec);
  auto out = std::make_unique<PartyDiscriminator>();
  out->party = party;
  out->spec = spec == nullptr || spec->text.empty() ? "run's D" : spec->text;
  torch::manual_seed(data::derive_seed(seed, kPartyDSeed, static_cast<std::uint64_t>(party)));
  try {
    if (spec != nullptr && !spec->script.empty()) {
      out->model = models::make_script_discriminator(script_archive, what);
    } else if (run_model.is_torchscript() &&
               (spec == nullptr || (!spec->d_width && !spec->d_norm))) {
      out->model = models::make_script_discriminator(run_model.scripts->discriminator, what);
    } else {
      // A built-in D of its own width and normalisation (the run's G may be a TorchScript one).
      models::ModelConfig c = run_model;
      c.family = "dcgan";
      c.scripts.reset();
      c.script_id.clear();
      if (spec != nullptr && spec->d_width) c.d_width = *spec->d_width;
      if (spec != nullptr && spec->d_norm) c.d_norm = *spec->d_norm;
      c.validate();
      out->model = models::ModelRegistry::instance().make(c).discriminator;
    }
  } catch (const std::exception& e) {
    throw Error(what + ": " + error_message(e));
  }
  if (!device.is_cpu()) out->model->to(device);
  // The dry forward: one logit per image, finite (a wrong D is named now, not in round 1).
  {
    torch::NoGradGuard no_grad;
    out->model->eval();
    auto gen = compat::make_cpu_generator(data::derive_seed(seed, kPartyDSeed));
    const auto x =
        (torch::rand({2, run_model.channels, run_model.image_size, run_model.image_size}, gen) * 2 -
         1)
            .to(device);
    torch::Tensor y;
    if (run_model.num_classes > 0) y = torch::arange(2, torch::kInt64).to(device);
    torch::Tensor logits;
    try {
      logits = out->model->forward(x, y);
    } catch (const std::exception& e) {
      const std::string text = error_message(e);
      throw Error(text.rfind(what, 0) == 0 ? text : what + ": D(x) fails: " + text);
    }
    if (logits.dim() != 1 || logits.size(0) != 2)
      throw Error(what + ": D(x) returned " + c10::str(logits.sizes()) +
                  " for 2 images; federated distillation needs one logit per image, [B]");
    if (!torch::isfinite(logits).all().item<bool>())
      throw Error(what + ": D(x) returned NaN or inf on 2 images in [-1, 1]");
    out->model->train();
  }
  out->flat = models::FlatParameters(*out->model);
  out->grad = models::attach_flat_grads(*out->model, out->flat);
  out->adam = train::FlatAdam(out->flat.parameters_view(), out->grad,
                              train::AdamOptions{lr_d, beta1, beta2, 1e-8});
  return out;
}

DistillTrainer::DistillTrainer(comm::Communicator& comm, models::Gan& global,
                               train::LocalTrainConfig local, const FederatedConfig& fed,
                               const DistillConfig& distill, std::vector<LocalParty> parties,
                               int total_parties)
    : m_comm(comm),
      m_global(global),
      m_local(std::move(local)),
      m_fed(fed),
      m_parties(std::move(parties)),
      m_total_parties(total_parties),
      m_loss(models::make_loss(m_local.loss, m_local.gp_weight)),
      m_combine(distill.combine),
      m_feedback({}, m_fed.aggregator.rule == AggregationRule::NormBound, distill.combine) {
  require(m_local.local_steps > 0,
          "--federation distill needs --local-steps N > 0: every party steps in lockstep with "
          "the one generator");
  m_g_adam = train::FlatAdam(m_global.g_flat().parameters_view(), m_global.g_grad(),
                             train::AdamOptions{m_local.lr_g, m_local.beta1, m_local.beta2, 1e-8});
  for (const auto& p : m_parties) {
    const auto* spec = distill.spec_of(p.id);
    const std::string archive = spec != nullptr && !spec->script.empty()
                                    ? distill.script_archives.at(static_cast<std::size_t>(p.id) %
                                                                 distill.discriminators.size())
                                    : std::string();
    m_discriminators.push_back(make_party_discriminator(m_global.config(), spec, archive, p.id,
                                                        m_fed.seed, m_local.lr_d, m_local.beta1,
                                                        m_local.beta2, m_fed.device));
  }
}

// Every party's n_k on every rank (the weights π_j): one allgather of (id, n_k) pairs, before
// the first round (the constructor has no collective, so a bad D fails alone, agreed by the
// caller's collective_try).
void DistillTrainer::gather_party_table() {
  std::vector<std::int64_t> mine;
  for (const auto& p : m_parties) mine.insert(mine.end(), {p.id, p.data->size()});
  m_party_samples.assign(static_cast<std::size_t>(m_total_parties), 0);
  for (const auto& bytes : m_comm.allgatherv(mine.data(), mine.size() * sizeof(std::int64_t))) {
    std::vector<std::int64_t> rows(bytes.size() / sizeof(std::int64_t));
    std::memcpy(rows.data(), bytes.data(), rows.size() * sizeof(std::int64_t));
    for (std::size_t i = 0; i + 1 < rows.size(); i += 2)
      m_party_samples.at(static_cast<std::size_t>(rows[i])) = rows[i + 1];
  }
  m_feedback = FeedbackAggregator(m_party_samples,
                                  m_fed.aggregator.rule == AggregationRule::NormBound, m_combine);
}

struct DistillTrainer::Backup {
  torch::Tensor g_values, g_m, g_v;
  std::int64_t g_step = 0;
  std::vector<std::map<std::string, torch::Tensor>> parties;
};

DistillTrainer::Backup DistillTrainer::backup() const {
  Backup b;
  b.g_values = m_global.g_flat().snapshot();
  b.g_m = m_g_adam.exp_avg().defined() ? m_g_adam.exp_avg().clone() : torch::Tensor();
  b.g_v = m_g_adam.exp_avg_sq().defined() ? m_g_adam.exp_avg_sq().clone() : torch::Tensor();
  b.g_step = m_g_adam.step_count();
  for (const auto& d : m_discriminators) {
    std::map<std::string, torch::Tensor> s;
    s["values"] = d->flat.snapshot();
    s["m"] = d->adam.exp_avg().clone();
    s["v"] = d->adam.exp_avg_sq().clone();
    s["step"] = torch::tensor({d->adam.step_count()}, torch::kInt64);
    b.parties.push_back(std::move(s));
  }
  return b;
}

void DistillTrainer::restore(const Backup& b) {
  torch::NoGradGuard no_grad;
  m_global.g_flat().restore(b.g_values);
  if (b.g_m.defined()) m_g_adam.exp_avg().copy_(b.g_m);
  if (b.g_v.defined()) m_g_adam.exp_avg_sq().copy_(b.g_v);
  m_g_adam.set_step_count(b.g_step);
  for (std::size_t i = 0; i < m_discriminators.size(); ++i) {
    auto& d = *m_discriminators[i];
    const auto& s = b.parties[i];
    d.flat.restore(s.at("values"));
    d.adam.exp_avg().copy_(s.at("m"));
    d.adam.exp_avg_sq().copy_(s.at("v"));
    d.adam.set_step_count(s.at("step").item<std::int64_t>());
  }
}

// The party's batches in order, epoch after epoch, numbered as LocalTrainer numbers them with
// --local-steps (round·10⁶ + e), so the order depends only on (seed, party, round).
const data::Batch& DistillTrainer::next_batch(std::size_t i) {
  auto& s = m_streams[i];
  while (s.next >= s.batches.size()) {
    s.batches = m_parties[i].data->epoch(s.epoch++, m_local.batch_size);
    s.next = 0;
  }
  return s.batches[s.next++];
}

RoundReport DistillTrainer::run_round(int round, const std::function<bool()>& interrupted) {
  const auto t_round = DistillClock::now();
  RoundReport report;
  report.round = round;
  if (m_party_samples.empty()) gather_party_table();
  const auto participants =
      sample_participants(m_total_parties, m_fed.participation, m_fed.seed, round);
  std::vector<std::size_t> hosted;  // indices into m_parties of this rank's participants
  for (std::size_t i = 0; i < m_parties.size(); ++i)
    if (std::binary_search(participants.begin(), participants.end(), m_parties[i].id))
      hosted.push_back(i);
  const Backup saved = backup();
  const double factor =
      train::lr_factor(m_local.lr_schedule, round, m_local.schedule_rounds, m_local.lr_final_ratio);
  m_g_adam.set_lr(m_local.lr_g * factor);
  m_streams.assign(m_parties.size(), Stream{});
  for (std::size_t i : hosted) {
    auto& d = *m_discriminators[i];
    if (m_fed.optimizer_state == OptimizerState::Reset) d.adam.reset();
    d.adam.set_lr(m_local.lr_d * factor);
    m_streams[i].epoch = static_cast<std::int64_t>(round) * 1000000;
  }
  const auto& cfg = m_global.config();
  const auto device = m_global.device();
  const std::int64_t b = m_local.batch_size;
  auto latents = compat::make_generator(
      data::derive_seed(m_fed.seed, kLatentSeed, static_cast<std::uint64_t>(round)), device);
  auto& g = m_global.generator();
  m_global.generator().train();
  double local_s = 0, wait_s = 0, g_s = 0, d_loss_sum = 0, g_loss_sum = 0;
  std::int64_t images = 0;
  for (int p : participants)
    images += std::min<std::int64_t>(m_party_samples[static_cast<std::size_t>(p)], b);
  for (std::int64_t step = 0; step < m_local.local_steps; ++step) {
    const bool stop = interrupted && interrupted();
    m_feedback.begin_step(participants, b);
    if (stop) m_feedback.set_stop();
    auto t0 = DistillClock::now();
    const auto z =
        torch::randn({b, cfg.latent_dim}, latents, torch::TensorOptions().device(device));
    const auto fake = g.forward(z, torch::Tensor());
    const auto fake_d = fake.detach();
    g_s += distill_seconds_since(t0);
    t0 = DistillClock::now();
    // Each hosted participant: one D step on (its real batch, the generated batch), then its
    // logits on the generated images with their graph, kept for the feedback.
    std::vector<std::pair<torch::Tensor, torch::Tensor>> kept;  // (logits, images) per hosted
    if (!stop) {
      for (std::size_t i : hosted) {
        auto& d = *m_discriminators[i];
        const auto& real = next_batch(i);
        set_distill_requires_grad(*d.model, true);
        d.grad.zero_();
        auto loss = m_loss->d_loss(d.model->forward(real.images, torch::Tensor()),
                                   d.model->forward(fake_d, torch::Tensor()));
        loss.backward();
        d.adam.step();
        set_distill_requires_grad(*d.model, false);
        auto x = fake_d.clone().requires_grad_(true);
        auto logits = d.model->forward(x, torch::Tensor());
        m_feedback.add_logits(m_parties[i].id, logits, loss.item<double>());
        kept.emplace_back(std::move(logits), std::move(x));
      }
    }
    local_s += distill_seconds_since(t0);
    t0 = DistillClock::now();
    const auto outcome = m_feedback.reduce_logits(m_comm);
    wait_s += distill_seconds_since(t0);
    for (auto& d : m_discriminators) set_distill_requires_grad(*d->model, true);
    if (outcome.stop) {
      restore(saved);
      report.interrupted = true;
      report.wall_s = distill_seconds_since(t_round);
      return report;
    }
    if (outcome.nonfinite_party >= 0) {
      restore(saved);
      throw Error("--federation distill: party " + std::to_string(outcome.nonfinite_party) +
                      "'s discriminator gave NaN/inf logits or loss in round " +
                      std::to_string(round) + ", step " + std::to_string(step + 1) +
                      "; G and every D were put back as round " + std::to_string(round - 1) +
                      " left them (lower --lr-d or --lr-g, or resume from an earlier checkpoint)",
                  /*collective=*/true);
    }
    t0 = DistillClock::now();
    for (std::size_t k = 0; k < hosted.size(); ++k) {
      const int id = m_parties[hosted[k]].id;
      auto f = party_feedback(kept[k].first, kept[k].second, m_feedback.cotangent(id));
      // A simulated hostile party (--attack, testing norm bounding) sends other feedback.
      if (m_fed.attack.attacks(id)) {
        if (m_fed.attack.kind == AttackSpec::Kind::SignFlip) f = -f;
        if (m_fed.attack.kind == AttackSpec::Kind::Scale) f = f * m_fed.attack.value;
      }
      m_feedback.add_feedback(id, f);
    }
    kept.clear();
    local_s += distill_seconds_since(t0);
    t0 = DistillClock::now();
    const auto feedback = m_feedback.reduce_feedback(m_comm, fake.sizes().vec());
    wait_s += distill_seconds_since(t0);
    t0 = DistillClock::now();
    m_global.g_grad().zero_();
    fake.backward(feedback.to(device));
    m_g_adam.step();
    g_s += distill_seconds_since(t0);
    d_loss_sum += outcome.d_loss_sum;
    g_loss_sum += outcome.ua.g_loss;
  }
  // G is the same on every rank, so this verdict is too: a round that leaves G non-finite is
  // undone before the run writes anything of it.
  if (!torch::isfinite(m_global.g_flat().flat()).all().item<bool>()) {
    restore(saved);
    throw Error("--federation distill: round " + std::to_string(round) +
                    " left the generator with NaN/inf values; it was put back as round " +
                    std::to_string(round - 1) + " left it (lower --lr-g)",
                /*collective=*/true);
  }
  // The slowest rank's party work, for the report (one int64 collective per round).
  std::int64_t slowest_us = std::llround(local_s * 1e6);
  m_comm.allreduce_max(&slowest_us, 1);
  const auto steps = static_cast<double>(m_local.local_steps);
  report.own_local_s = local_s;
  report.local_s = static_cast<double>(slowest_us) * 1e-6;
  report.wait_s = wait_s;
  report.aggregate_s = g_s;
  report.parties = static_cast<std::int64_t>(participants.size());
  for (int p : participants) report.samples += m_party_samples[static_cast<std::size_t>(p)];
  report.images = images * m_local.local_steps;
  report.d_loss = d_loss_sum / (steps * static_cast<double>(participants.size()));
  report.g_loss = g_loss_sum / steps;
  report.wall_s = distill_seconds_since(t_round);
  return report;
}

std::map<std::string, torch::Tensor> DistillTrainer::server_state() const {
  using namespace io::keys;
  std::map<std::string, torch::Tensor> out;
  const std::string p = kDistillG;
  if (m_g_adam.exp_avg().defined()) {
    out[p + kDistillExpAvg] = m_g_adam.exp_avg();
    out[p + kDistillExpAvgSq] = m_g_adam.exp_avg_sq();
  }
  out[p + kDistillStep] = torch::tensor({m_g_adam.step_count()}, torch::kInt64);
  return out;
}

void DistillTrainer::load_server_state(const std::map<std::string, torch::Tensor>& state) {
  using namespace io::keys;
  const std::string p = kDistillG;
  const auto step = state.find(p + kDistillStep);
  if (step == state.end())
    throw Error("checkpoint: no generator optimizer state (" + p + kDistillStep +
                "): not a checkpoint of --federation distill");
  torch::NoGradGuard no_grad;
  m_g_adam.set_step_count(step->second.item<std::int64_t>());
  if (auto m = state.find(p + kDistillExpAvg); m != state.end()) {
    require(m->second.numel() == m_g_adam.exp_avg().numel(),
            "checkpoint: generator optimizer state of another model");
    m_g_adam.exp_avg().copy_(m->second.reshape(m_g_adam.exp_avg().sizes()));
    m_g_adam.exp_avg_sq().copy_(
        state.at(p + kDistillExpAvgSq).reshape(m_g_adam.exp_avg_sq().sizes()));
  }
}

std::map<std::string, torch::Tensor> DistillTrainer::party_state_tensors() const {
  using namespace io::keys;
  std::map<std::string, torch::Tensor> out;
  for (const auto& d : m_discriminators) {
    const std::string p = party_prefix(d->party) + kDistillD;
    out[p + kDistillValues] = d->flat.flat();
    out[p + kDistillExpAvg] = d->adam.exp_avg();
    out[p + kDistillExpAvgSq] = d->adam.exp_avg_sq();
    out[p + kDistillStep] = torch::tensor({d->adam.step_count()}, torch::kInt64);
  }
  return out;
}

void DistillTrainer::load_party_state_tensors(const std::map<std::string, torch::Tensor>& t) {
  using namespace io::keys;
  torch::NoGradGuard no_grad;
  for (auto& d : m_discriminators) {
    const std::string p = party_prefix(d->party) + kDistillD;
    auto get = [&](const char* what, std::int64_t numel) {
      const auto it = t.find(p + what);
      if (it == t.end())
        throw Error("checkpoint: no " + p + what + " (party " + std::to_string(d->party) +
                    "'s discriminator, " + d->spec + ")");
      if (numel >= 0 && it->second.numel() != numel)
        throw Error("checkpoint: " + p + what + " has " + std::to_string(it->second.numel()) +
                    " values; party " + std::to_string(d->party) + "'s discriminator (" + d->spec +
                    ") has " + std::to_string(numel));
      return it->second;
    };
    d->flat.restore(get(kDistillValues, d->flat.numel()).reshape({-1}).to(d->flat.flat().device()));
    const auto n = d->adam.exp_avg().numel();
    d->adam.exp_avg().copy_(get(kDistillExpAvg, n).reshape(d->adam.exp_avg().sizes()));
    d->adam.exp_avg_sq().copy_(get(kDistillExpAvgSq, n).reshape(d->adam.exp_avg_sq().sizes()));
    d->adam.set_step_count(get(kDistillStep, 1).item<std::int64_t>());
  }
}

DistillTraffic DistillTrainer::traffic(std::int64_t fedavg_values) const {
  DistillTraffic t;
  const auto& c = m_global.config();
  t.steps = m_local.local_steps;
  t.batch = m_local.batch_size;
  t.image_values = static_cast<std::int64_t>(c.channels) * c.image_size * c.image_size;
  constexpr std::int64_t kFloat = 4;
  t.down = t.steps * (t.batch * t.image_values + t.batch) * kFloat;
  t.up = t.steps * (t.batch + t.batch * t.image_values) * kFloat;
  t.fedavg = 2 * fedavg_values * kFloat;
  return t;
}

}  // namespace fedgan::federated
