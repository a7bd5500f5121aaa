// The federation controller: after every round it reads the round's signals (losses, FID, update
// norms) and adjusts the next round's strategy rule by rule (quarantine an outlying party, fewer
// or more local steps, a smaller server learning rate, more participation); every change is a
// Decision that names the signal that caused it, so a run's log says why its strategy moved.
// Pure logic: no communicator, no model; every rank feeds it the same signals and so decides the
// same, and its whole state goes into checkpoints so that a resumed run decides as an
// uninterrupted one.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "fedgan/core/choice.hpp"

namespace fedgan::federated::adapt {

// One party's part of a round, as the round loop measured it.
struct PartySignal {
  int party = 0;
  std::int64_t steps = 0;  // local steps it trained
  double update_norm = 0;  // ||its update Δ||
  bool finite = true;      // false when its update held a NaN or an infinity
};

// What the round loop hands over after each completed round (the same on every rank).
struct RoundSignals {
  int round = 0;
  double d_loss = 0, g_loss = 0;  // means over the round's contributing parties
  double fid = std::numeric_limits<double>::quiet_NaN();  // NaN when the round was not evaluated
  double mean_update_norm = 0;  // ||aggregate mean update|| (the applied mean Δ, before server lr)
  std::vector<PartySignal> parties;  // every party that trained this round, ascending id
};

enum class Rule { Quarantine, LocalSteps, ServerLr, Participation };

// --auto: the rule names "quarantine", "steps", "server-lr", "participation" (table order is the
// order in which observe() applies the rules and lists their decisions).
const ChoiceTable<Choice<Rule>>& controller_rules();

// The controller's rules and thresholds. The rules, as implemented (round t is the observed
// round; every change takes effect from round t + 1):
//
// quarantine  Re-admission first: a party whose quarantine ended with round t is re-admitted
//             (a Decision). Then every party of round t that is not already excluded is a
//             candidate when its update is non-finite (`finite` false or a non-finite norm), or
//             when round t has >= 3 finite parties and its norm > outlier_ratio × the median
//             norm of the round's OTHER finite parties. Candidates are taken non-finite first,
//             then by the largest ratio to that median, then by id; each is excluded for rounds
//             t+1 .. t+quarantine_rounds unless that would leave fewer than
//             max(2, ceil(total_parties / 2)) parties not excluded (the floor counts all parties,
//             not the round's draw); a refused exclusion is itself a Decision ("kept: ...").
// steps       Agreement a = mean_update_norm / mean(update norms of the round's finite parties),
//             measured only when the round has >= 2 finite parties and both norms are finite and
//             the mean is > 0; a round without a measurement breaks both streaks. a < agreement_low
//             in `patience` consecutive rounds: the parties drift apart, so local_steps_scale
//             halves (not below steps_min_scale). a > agreement_high in `patience` consecutive
//             rounds: they agree, so local_steps_scale × 1.5 (not above steps_max_scale). A change
//             resets both streaks; at a limit nothing changes and the streak keeps counting.
// server-lr   On evaluated rounds only (a finite fid; NaN or an infinity: not evaluated). FID >
//             (1 + fid_worse) × the best FID so far in `patience` consecutive evaluations:
//             server_lr_scale halves (not below server_lr_min_scale); a change resets the
//             streak, at the limit it keeps counting. A new best (FID < best; the first
//             evaluation is one) while server_lr_scale < 1: server_lr_scale doubles (at most 1).
// participation  On evaluated rounds: `patience` consecutive evaluations without a new best FID
//             (the first evaluation is a new best) while participation < 1: participation +=
//             participation_step (at most 1) and the streak resets. Participation starts at the
//             run's base participation and never decreases.
// Both FID rules may fire on the same evaluation (FID worse `patience` times is also no new best
// `patience` times): the server step shrinks while more parties are drawn.
//
// Each rule sees only the signals and its own state; a rule not in `rules` keeps no state of
// its own and never changes a setting (the best FID is tracked for both FID rules alike).
struct ControllerConfig {
  std::vector<Rule> rules;  // empty: controller off
  // quarantine: a party whose update norm > ratio × the median norm of the round's others.
  double outlier_ratio = 5.0;
  // quarantine: rounds a quarantined party sits out before it is re-admitted.
  int quarantine_rounds = 3;
  // steps: agreement a below `low` (drift) or above `high` (agreement) counts toward a change.
  double agreement_low = 0.3, agreement_high = 0.7;
  // steps: the bounds of local_steps_scale.
  double steps_min_scale = 0.25, steps_max_scale = 2.0;
  // Consecutive rounds (steps) or evaluations (server-lr, participation) a signal must persist.
  int patience = 2;
  // server-lr: an FID counts as worse when > (1 + fid_worse) × the best FID so far.
  double fid_worse = 0.05;
  // server-lr: the lower bound of server_lr_scale.
  double server_lr_min_scale = 0.125;
  // participation: what one change adds to the participation fraction.
  double participation_step = 0.25;
};

// Parses the text of --auto: "all" (every rule), "off" (none) or a comma list of rule names
// (no spaces); the rules come back in table order. fedgan::Error naming --auto and the
// accepted words on an unknown or empty word, a duplicate, or "all"/"off" inside a list.
ControllerConfig parse_controller_rules(const std::string& text);

// What the next round uses.
struct Settings {
  double local_steps_scale = 1.0;  // multiplies each party's planned local steps (round, >= 1)
  double server_lr_scale = 1.0;    // multiplies the server learning rate
  double participation = 1.0;      // fraction of parties drawn
  std::vector<int> excluded;       // quarantined parties, ascending
};

// One change and why: {round observed, rule name, the signal with its numbers, the action}, e.g.
// {5, "quarantine", "party 3 update norm 41.2 = 12.1x median 3.4 of the others",
// "exclude party 3 for rounds 6..8"}.
struct Decision {
  int round = 0;
  std::string rule, signal, action;
};

class Controller {
 public:
  // fedgan::Error on a threshold out of range, total_parties < 1 or base_participation outside
  // (0, 1].
  Controller(ControllerConfig config, int total_parties, double base_participation);

  bool enabled() const { return !m_config.rules.empty(); }

  // After round `signals.round`: updates settings() for the next round and returns what
  // changed, each with its signal (empty: nothing changed), in rule order. Deterministic: the
  // same sequence of signals gives the same decisions. Rounds must increase from call to call
  // and party ids ascend within [0, total_parties) (fedgan::Error otherwise). Does nothing when
  // the controller is off.
  std::vector<Decision> observe(const RoundSignals& signals);

  const Settings& settings() const { return m_settings; }
  const ControllerConfig& config() const { return m_config; }

  // Everything observe() depends on besides the config, for checkpoints: tensors keyed
  // "controller/..." (float64 or int64, CPU, none empty). load_state restores it so that a
  // resumed controller decides exactly as an uninterrupted one; fedgan::Error naming the key
  // when one is missing or has another dtype or shape (another number of parties).
  std::map<std::string, torch::Tensor> state() const;
  void load_state(const std::map<std::string, torch::Tensor>& state);

 private:
  bool has(Rule rule) const;
  void check_signals(const RoundSignals& signals) const;
  void readmit(int round, std::vector<Decision>& out);
  void quarantine(const RoundSignals& signals, std::vector<Decision>& out);
  void adapt_steps(const RoundSignals& signals, std::vector<Decision>& out);
  void adapt_to_fid(const RoundSignals& signals, std::vector<Decision>& out);
  void refresh_excluded();

  ControllerConfig m_config;
  int m_total_parties;
  Settings m_settings;
  // Per party: the last round of its quarantine, or -1 when it is not excluded.
  std::vector<std::int64_t> m_excluded_until;
  std::int64_t m_last_round = std::numeric_limits<std::int64_t>::min();
  std::int64_t m_low_streak = 0, m_high_streak = 0;             // steps
  std::int64_t m_worse_streak = 0, m_stale_streak = 0;          // server-lr, participation
  double m_best_fid = std::numeric_limits<double>::infinity();  // infinity: none yet
};

}  // namespace fedgan::federated::adapt
