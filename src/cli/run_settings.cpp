// Run settings as text and the resume check (see include/fedgan/cli/run_settings.hpp).
#include "fedgan/cli/run_settings.hpp"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "fedgan/core/error.hpp"

namespace fedgan::cli {
namespace {

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  const auto b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

bool is_action(const std::string& key) {
  return key == "resume" || key == "force" || key == "allow-change";
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return !a.empty() && !b.empty() && std::filesystem::equivalent(a, b, ec) && !ec;
}

}  // namespace

std::string run_config_text(const std::string& section, const CLI::App& sub) {
  std::istringstream in(sub.config_to_str(true, false));
  std::string out = "[" + section + "]\n", line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq != std::string::npos && is_action(trim(line.substr(0, eq)))) continue;
    out += line + "\n";
  }
  return out;
}

std::map<std::string, std::string> config_values(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == '[') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    out[trim(line.substr(0, eq))] = value;
  }
  return out;
}

const std::vector<std::string>& run_defining_settings() {
  static const std::vector<std::string> keys = {
      "data",     "seed",       "parties-per-rank", "conditional",
      "model",    "latent-dim", "g-width",          "d-width",
      "d-norm",   "loss",       "server-optimizer", "optimizer-state",
      "local-bn", "init",       "init-map",         "freeze-g",
      "freeze-d", "train-only",
      // DP on or off, and how the noise is placed and the updates weighted, define what the
      // account means (z, δ and the budget may change: each round is accounted as it ran).
      "dp-clip",  "dp-noise",   "dp-weighting",
      // Federated distillation: the parties' own discriminators are part of the model.
      "federation", "party-discriminators", "feedback-combine",
      // Kernel modulation: its rank is part of the model; the probe's settings made the mask.
      "modulation-rank", "modulation-keep", "modulation-probe-steps",
      // Asynchronous aggregation: the replayed schedule follows from these, and the checkpoint
      // holds the model versions that schedule's parties in flight started from.
      "async-buffer", "party-speed", "staleness", "async-weighting"};
  return keys;
}

void check_resume_settings(const std::string& checkpoint, const std::string& saved,
                           const std::string& current, const std::vector<std::string>& allowed) {
  if (saved.empty()) return;
  const auto was = config_values(saved), now = config_values(current);
  auto allowed_key = [&](const std::string& key) {
    return std::find(allowed.begin(), allowed.end(), key) != allowed.end() ||
           std::find(allowed.begin(), allowed.end(), "all") != allowed.end();
  };
  std::string diffs;
  // Settings added after runs were made: a checkpoint without them had their default.
  static const std::map<std::string, std::string> kAddedLater = {
      {"federation", "fedavg"},   {"feedback-combine", "ua"},     {"modulation-rank", "0"},
      {"modulation-keep", "0.5"}, {"modulation-probe-steps", "40"},
      {"async-buffer", "0"},      {"party-speed", ""},            {"staleness", "sqrt"},
      {"async-weighting", "samples"}};
  for (const auto& key : run_defining_settings()) {
    const auto later = kAddedLater.find(key);
    const auto a = was.count(key) ? was.at(key)
                   : later != kAddedLater.end() ? later->second
                                                : std::string();
    // (`pretrain` has no transfer or federation options: their defaults hold there too.)
    const auto b = now.count(key)                ? now.at(key)
                   : later != kAddedLater.end() ? later->second
                                                : std::string();
    if (a == b || allowed_key(key)) continue;
    if ((key == "data" || key == "init") && same_file(a, b)) continue;
    diffs += "\n  " + key + ": " + (b.empty() ? "(not set)" : "'" + b + "'") + " now, " +
             (a.empty() ? "(not set)" : "'" + a + "'") + " in the run being resumed";
  }
  if (!diffs.empty())
    throw Error(checkpoint + ": --resume continues a run with other settings:" + diffs +
                "\nthese define the run (its data, draws, parties and model architecture); start "
                "a new run with another --out, or accept the change with --allow-change KEY,... "
                "(e.g. --allow-change data when the dataset file moved)");
}

}  // namespace fedgan::cli
