// The federation controller's rules (see include/fedgan/federated/adapt/controller.hpp).
#include "fedgan/federated/adapt/controller.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <tuple>
#include <utility>

#include "fedgan/core/error.hpp"
#include "fedgan/federated/aggregation/robust_rules.hpp"
#include "fedgan/io/checkpoint_keys.hpp"

namespace fedgan::federated::adapt {

namespace {

// A number with 4 significant digits, for signals and actions.
std::string ctl_num(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g", value);
  return text;
}

bool ctl_party_finite(const PartySignal& p) { return p.finite && std::isfinite(p.update_norm); }

// A change of one scalar setting as an action: "server lr scale 1 -> 0.5".
std::string ctl_change(const char* what, double from, double to) {
  return std::string(what) + " " + ctl_num(from) + " -> " + ctl_num(to);
}

const torch::Tensor& ctl_entry(const std::map<std::string, torch::Tensor>& state,
                               const std::string& key, torch::ScalarType dtype, std::int64_t size) {
  const auto it = state.find(key);
  require(it != state.end(), "controller state: '" + key + "' missing from the checkpoint");
  const auto& t = it->second;
  require(t.scalar_type() == dtype && t.dim() == 1 && t.size(0) == size,
          "controller state: '" + key + "' must be a " + std::string(c10::toString(dtype)) +
              " vector of " + std::to_string(size) +
              " (a checkpoint of another number of parties?)");
  return t;
}

}  // namespace

const ChoiceTable<Choice<Rule>>& controller_rules() {
  static const Choice<Rule> entries[] = {
      {Rule::Quarantine, "quarantine",
       "exclude a party with a non-finite or outlying update norm for a few rounds"},
      {Rule::LocalSteps, "steps",
       "fewer local steps while the parties' updates disagree, more while they agree"},
      {Rule::ServerLr, "server-lr", "halve the server learning rate while FID gets worse"},
      {Rule::Participation, "participation", "draw more parties while FID stops improving"},
  };
  static const ChoiceTable<Choice<Rule>> table(entries, "--auto", "rule");
  return table;
}

ControllerConfig parse_controller_rules(const std::string& text) {
  const auto& table = controller_rules();
  const std::string accepted = "(expected all, off or a comma list of " + table.expected() + ")";
  ControllerConfig config;
  if (text == "off") return config;
  if (text == "all") {
    for (const auto& e : table) config.rules.push_back(e.value);
    return config;
  }
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string word = text.substr(start, comma == std::string::npos ? comma : comma - start);
    const Choice<Rule>* entry = table.find(word);
    require(entry != nullptr, "--auto: unknown rule '" + word + "' in '" + text + "' " + accepted);
    require(std::find(config.rules.begin(), config.rules.end(), entry->value) == config.rules.end(),
            "--auto: rule '" + word + "' given twice in '" + text + "'");
    config.rules.push_back(entry->value);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  // Table order, so that the order of the words changes nothing.
  std::vector<Rule> ordered;
  for (const auto& e : table)
    if (std::find(config.rules.begin(), config.rules.end(), e.value) != config.rules.end())
      ordered.push_back(e.value);
  config.rules = ordered;
  return config;
}

Controller::Controller(ControllerConfig config, int total_parties, double base_participation)
    : m_config(std::move(config)), m_total_parties(total_parties) {
  const auto& c = m_config;
  require(total_parties >= 1, "controller: the federation needs at least one party");
  require(base_participation > 0 && base_participation <= 1,
          "controller: participation must be in (0, 1]");
  require(c.outlier_ratio > 1, "controller: outlier_ratio must be > 1");
  require(c.quarantine_rounds >= 1, "controller: quarantine_rounds must be >= 1");
  require(c.agreement_low >= 0 && c.agreement_low < c.agreement_high,
          "controller: agreement thresholds need 0 <= agreement_low < agreement_high");
  require(c.steps_min_scale > 0 && c.steps_min_scale <= 1 && c.steps_max_scale >= 1,
          "controller: steps scales need 0 < steps_min_scale <= 1 <= steps_max_scale");
  require(c.patience >= 1, "controller: patience must be >= 1");
  require(c.fid_worse >= 0, "controller: fid_worse must be >= 0");
  require(c.server_lr_min_scale > 0 && c.server_lr_min_scale <= 1,
          "controller: server_lr_min_scale must be in (0, 1]");
  require(c.participation_step > 0 && c.participation_step <= 1,
          "controller: participation_step must be in (0, 1]");
  m_settings.participation = base_participation;
  m_excluded_until.assign(static_cast<std::size_t>(total_parties), -1);
}

bool Controller::has(Rule rule) const {
  return std::find(m_config.rules.begin(), m_config.rules.end(), rule) != m_config.rules.end();
}

void Controller::check_signals(const RoundSignals& signals) const {
  require(signals.round > m_last_round,
          "controller: round " + std::to_string(signals.round) + " observed after round " +
              std::to_string(m_last_round) + " (rounds must increase)");
  int previous = -1;
  for (const auto& p : signals.parties) {
    require(p.party > previous && p.party < m_total_parties,
            "controller: party ids must ascend within [0, " + std::to_string(m_total_parties) +
                "), got " + std::to_string(p.party));
    previous = p.party;
  }
}

std::vector<Decision> Controller::observe(const RoundSignals& signals) {
  std::vector<Decision> out;
  if (!enabled()) return out;
  check_signals(signals);
  m_last_round = signals.round;
  if (has(Rule::Quarantine)) {
    readmit(signals.round, out);
    quarantine(signals, out);
  }
  if (has(Rule::LocalSteps)) adapt_steps(signals, out);
  adapt_to_fid(signals, out);
  return out;
}

void Controller::readmit(int round, std::vector<Decision>& out) {
  for (int party = 0; party < m_total_parties; ++party) {
    auto& until = m_excluded_until[static_cast<std::size_t>(party)];
    if (until < 0 || until > round) continue;
    const auto first = until - m_config.quarantine_rounds + 1;
    out.push_back(
        {round, "quarantine",
         "party " + std::to_string(party) + " sat out rounds " + std::to_string(first) + ".." +
             std::to_string(until),
         "re-admit party " + std::to_string(party) + " from round " + std::to_string(round + 1)});
    until = -1;
  }
  refresh_excluded();
}

void Controller::quarantine(const RoundSignals& signals, std::vector<Decision>& out) {
  std::vector<double> finite_norms;
  for (const auto& p : signals.parties)
    if (ctl_party_finite(p)) finite_norms.push_back(p.update_norm);

  // (non-finite first, larger ratio first, id; the signal) for each candidate.
  struct Candidate {
    bool finite;
    double ratio;
    int party;
    std::string signal;
  };
  std::vector<Candidate> candidates;
  for (const auto& p : signals.parties) {
    if (m_excluded_until[static_cast<std::size_t>(p.party)] >= 0) continue;
    const std::string who = "party " + std::to_string(p.party);
    if (!ctl_party_finite(p)) {
      candidates.push_back(
          {false, 0, p.party, who + " update is not finite (norm " + ctl_num(p.update_norm) + ")"});
      continue;
    }
    // The median of the others: an outlier must not raise the yardstick it is measured by.
    if (finite_norms.size() < 3) continue;
    std::vector<double> others = finite_norms;
    others.erase(std::find(others.begin(), others.end(), p.update_norm));
    const double median = median_of(others);
    if (!(p.update_norm > m_config.outlier_ratio * median)) continue;
    const double ratio =
        median > 0 ? p.update_norm / median : std::numeric_limits<double>::infinity();
    candidates.push_back({true, ratio, p.party,
                          who + " update norm " + ctl_num(p.update_norm) + " = " + ctl_num(ratio) +
                              "x median " + ctl_num(median) + " of the others"});
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return std::make_tuple(a.finite, -a.ratio, a.party) <
           std::make_tuple(b.finite, -b.ratio, b.party);
  });

  // Enough parties must stay to average: at least two, and at least half of the federation.
  const int min_parties = std::max(2, (m_total_parties + 1) / 2);
  for (const auto& c : candidates) {
    const int remaining = m_total_parties - static_cast<int>(m_settings.excluded.size());
    if (remaining - 1 < min_parties) {
      out.push_back({signals.round, "quarantine", c.signal,
                     "kept: would leave too few parties (" + std::to_string(remaining - 1) +
                         " < floor " + std::to_string(min_parties) + " of " +
                         std::to_string(m_total_parties) + ")"});
      continue;
    }
    const std::int64_t until =
        static_cast<std::int64_t>(signals.round) + m_config.quarantine_rounds;
    m_excluded_until[static_cast<std::size_t>(c.party)] = until;
    refresh_excluded();
    out.push_back({signals.round, "quarantine", c.signal,
                   "exclude party " + std::to_string(c.party) + " for rounds " +
                       std::to_string(signals.round + 1) + ".." + std::to_string(until)});
  }
}

void Controller::adapt_steps(const RoundSignals& signals, std::vector<Decision>& out) {
  double sum = 0;
  int count = 0;
  for (const auto& p : signals.parties)
    if (ctl_party_finite(p)) {
      sum += p.update_norm;
      ++count;
    }
  const double mean = count > 0 ? sum / count : 0;
  // One party agrees with itself: agreement says something only about two or more.
  if (count < 2 || !(mean > 0) || !std::isfinite(mean) ||
      !std::isfinite(signals.mean_update_norm)) {
    m_low_streak = m_high_streak = 0;
    return;
  }
  const double a = signals.mean_update_norm / mean;
  m_low_streak = a < m_config.agreement_low ? m_low_streak + 1 : 0;
  m_high_streak = a > m_config.agreement_high ? m_high_streak + 1 : 0;

  double& scale = m_settings.local_steps_scale;
  const double before = scale;
  std::string signal;
  if (m_low_streak >= m_config.patience) {
    scale = std::max(m_config.steps_min_scale, scale * 0.5);
    signal = "agreement " + ctl_num(a) + " < " + ctl_num(m_config.agreement_low);
  } else if (m_high_streak >= m_config.patience) {
    scale = std::min(m_config.steps_max_scale, scale * 1.5);
    signal = "agreement " + ctl_num(a) + " > " + ctl_num(m_config.agreement_high);
  }
  if (scale == before) return;
  m_low_streak = m_high_streak = 0;
  out.push_back({signals.round, "steps",
                 signal + " for " + std::to_string(m_config.patience) + " consecutive rounds",
                 ctl_change("local steps scale", before, scale)});
}

void Controller::adapt_to_fid(const RoundSignals& signals, std::vector<Decision>& out) {
  const double fid = signals.fid;
  if (!std::isfinite(fid)) return;
  const bool first = std::isinf(m_best_fid);
  const bool new_best = fid < m_best_fid;
  const double best_before = m_best_fid;
  if (new_best) m_best_fid = fid;
  const std::string was = first ? "" : " (best was " + ctl_num(best_before) + ")";
  const std::string patience = std::to_string(m_config.patience);

  if (has(Rule::ServerLr)) {
    double& scale = m_settings.server_lr_scale;
    const double before = scale;
    m_worse_streak = fid > (1 + m_config.fid_worse) * best_before ? m_worse_streak + 1 : 0;
    if (new_best && scale < 1) {
      scale = std::min(1.0, scale * 2);
      out.push_back({signals.round, "server-lr", "new best FID " + ctl_num(fid) + was,
                     ctl_change("server lr scale", before, scale)});
    } else if (m_worse_streak >= m_config.patience) {
      scale = std::max(m_config.server_lr_min_scale, scale * 0.5);
      if (scale != before) {
        m_worse_streak = 0;
        out.push_back({signals.round, "server-lr",
                       "FID " + ctl_num(fid) + " > " + ctl_num(1 + m_config.fid_worse) + "x best " +
                           ctl_num(best_before) + " in " + patience + " consecutive evaluations",
                       ctl_change("server lr scale", before, scale)});
      }
    }
  }
  if (has(Rule::Participation)) {
    double& participation = m_settings.participation;
    const double before = participation;
    m_stale_streak = new_best ? 0 : m_stale_streak + 1;
    if (m_stale_streak >= m_config.patience && participation < 1) {
      participation = std::min(1.0, participation + m_config.participation_step);
      m_stale_streak = 0;
      out.push_back({signals.round, "participation",
                     "no new best FID in " + patience + " consecutive evaluations (FID " +
                         ctl_num(fid) + ", best " + ctl_num(m_best_fid) + ")",
                     ctl_change("participation", before, participation)});
    }
  }
}

void Controller::refresh_excluded() {
  m_settings.excluded.clear();
  for (int party = 0; party < m_total_parties; ++party)
    if (m_excluded_until[static_cast<std::size_t>(party)] >= 0)
      m_settings.excluded.push_back(party);
}

std::map<std::string, torch::Tensor> Controller::state() const {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  const std::vector<double> settings = {m_settings.local_steps_scale, m_settings.server_lr_scale,
                                        m_settings.participation};
  const std::vector<std::int64_t> counters = {m_last_round, m_low_streak, m_high_streak,
                                              m_worse_streak, m_stale_streak};
  return {
      {io::keys::kControllerSettings, torch::tensor(settings, f64)},
      {io::keys::kControllerExcluded, torch::tensor(m_excluded_until, i64)},
      {io::keys::kControllerCounters, torch::tensor(counters, i64)},
      // {1, best} or {0, 0} before the first evaluation (checkpoints hold finite values only).
      {io::keys::kControllerBestFid, torch::tensor(std::isinf(m_best_fid) ? std::vector<double>{0, 0}
                                                             : std::vector<double>{1, m_best_fid},
                                     f64)},
  };
}

void Controller::load_state(const std::map<std::string, torch::Tensor>& state) {
  const auto settings = ctl_entry(state, io::keys::kControllerSettings, torch::kFloat64, 3).contiguous();
  const auto excluded =
      ctl_entry(state, io::keys::kControllerExcluded, torch::kInt64, m_total_parties).contiguous();
  const auto counters = ctl_entry(state, io::keys::kControllerCounters, torch::kInt64, 5).contiguous();
  const auto best = ctl_entry(state, io::keys::kControllerBestFid, torch::kFloat64, 2).contiguous();

  const double* s = settings.data_ptr<double>();
  m_settings.local_steps_scale = s[0];
  m_settings.server_lr_scale = s[1];
  m_settings.participation = s[2];
  const std::int64_t* e = excluded.data_ptr<std::int64_t>();
  m_excluded_until.assign(e, e + m_total_parties);
  const std::int64_t* c = counters.data_ptr<std::int64_t>();
  m_last_round = c[0];
  m_low_streak = c[1];
  m_high_streak = c[2];
  m_worse_streak = c[3];
  m_stale_streak = c[4];
  m_best_fid = best.data_ptr<double>()[0] != 0 ? best.data_ptr<double>()[1]
                                               : std::numeric_limits<double>::infinity();
  refresh_excluded();
}

}  // namespace fedgan::federated::adapt
