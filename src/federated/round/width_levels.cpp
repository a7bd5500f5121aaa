// Width levels of a heterogeneous federation (see include/fedgan/federated/round/width_levels.hpp).
#include "fedgan/federated/round/width_levels.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "fedgan/core/error.hpp"
#include "fedgan/data/random.hpp"

namespace fedgan::federated {

const ChoiceTable<Choice<WidthBn>>& width_bns() {
  static const Choice<WidthBn> entries[] = {
      {WidthBn::Static, "static",
       "no party sends BatchNorm statistics; G's are recomputed from its own activations at "
       "each width (HeteroFL's sBN)"},
      {WidthBn::Shared, "shared", "statistics averaged like parameters, over their holders"},
  };
  static const ChoiceTable<Choice<WidthBn>> table(entries, "--width-bn", "BatchNorm mode");
  return table;
}

const ChoiceTable<Choice<WidthSlicing>>& width_slicings() {
  static const Choice<WidthSlicing> entries[] = {
      {WidthSlicing::Leading, "leading",
       "the leading channels of every hidden layer, every round (HeteroFL)"},
      {WidthSlicing::Rolling, "rolling",
       "a window of channels that moves every round, so every channel is trained by every "
       "width (FedRolex)"},
  };
  static const ChoiceTable<Choice<WidthSlicing>> table(entries, "--width-slicing",
                                                       "slicing");
  return table;
}

const ChoiceTable<Choice<WidthAverage>>& width_averages() {
  static const Choice<WidthAverage> entries[] = {
      {WidthAverage::Holders, "holders",
       "each value over the round's parties that hold it (HeteroFL)"},
      {WidthAverage::All, "all",
       "each value over every participant, one that does not hold it counting as no change"},
  };
  static const ChoiceTable<Choice<WidthAverage>> table(entries, "--width-average", "average");
  return table;
}

std::string WidthConfig::to_string() const {
  std::string out;
  for (double r : party_ratio) out += (out.empty() ? "" : ",") + fmt::format("{:g}", r);
  return out + " bn=" + width_bns().name(bn) + " scaler=" + (scaler ? "on" : "off") +
         " slicing=" + width_slicings().name(slicing) + " average=" + width_averages().name(average);
}

std::vector<double> parse_width_ratios(const std::string& text, const std::string& what) {
  std::vector<double> out;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const auto a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
    item = a == std::string::npos ? "" : item.substr(a, b - a + 1);
    std::size_t used = 0;
    try {
      out.push_back(std::stod(item, &used));
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size())
      throw Error(what + ": '" + item + "' is not a number (expected ratios in (0, 1], e.g. "
                  "1,0.5,0.25)");
  }
  return out;
}

WidthConfig WidthConfig::parse(const std::string& text, const std::string& where) {
  WidthConfig out;
  std::istringstream in(text);
  std::string ratios, bn, scaler, slicing, average;
  in >> ratios >> bn >> scaler >> slicing >> average;
  auto bad = [&](const std::string& why) {
    return Error(where + " = '" + text + "': " + why +
                 " (expected e.g. '1,0.5,0.25 bn=static scaler=off slicing=leading average=holders')");
  };
  try {
    out.party_ratio = parse_width_ratios(ratios, "the ratios");
  } catch (const Error& e) {
    throw bad(e.what());
  }
  if (out.party_ratio.empty()) throw bad("no ratio");
  // "key=name" of a choice table: its value, or the error naming what is wrong.
  auto choice = [&](const std::string& token, const std::string& key, const auto& table) {
    if (token.rfind(key + "=", 0) != 0) throw bad("no " + key + "=");
    try {
      return table.parse(token.substr(key.size() + 1)).value;
    } catch (const Error& e) {
      throw bad(e.what());
    }
  };
  out.bn = choice(bn, "bn", width_bns());
  if (scaler != "scaler=on" && scaler != "scaler=off") throw bad("no scaler=on|off");
  out.scaler = scaler == "scaler=on";
  out.slicing = choice(slicing, "slicing", width_slicings());
  out.average = choice(average, "average", width_averages());
  return out;
}

std::uint64_t static_bn_seed(std::uint64_t run_seed) {
  constexpr std::uint64_t kStaticBn = 0x73626e;  // "sbn": static BN's latents, apart from every other draw
  return data::derive_seed(run_seed, kStaticBn);
}

std::unique_ptr<models::Gan> cut_submodel(const models::Gan& global, double ratio,
                                          const WidthConfig& widths, const std::string& what) {
  auto sub = models::make_submodel(global, ratio, widths.scaler, what);
  if (widths.bn == WidthBn::Static) models::recompute_generator_bn(*sub, static_bn_seed(0));
  return sub;
}

WidthLevels::WidthLevels(const WidthConfig& config, const models::Gan& global,
                         const ModelPlans& plans)
    : m_config(config), m_global(&global), m_plans(&plans) {
  std::vector<double> ratios;
  for (std::size_t k = 0; k < config.party_ratio.size(); ++k) {
    const double r = config.party_ratio[k];
    // Checks the ratio (and that the model can be sliced) with the party's name.
    (void)models::width_config(global.config(), r, "--width-ratios: party " + std::to_string(k));
    if (std::find(ratios.begin(), ratios.end(), r) == ratios.end()) ratios.push_back(r);
  }
  std::sort(ratios.begin(), ratios.end(), std::greater<>());
  for (double r : ratios) {
    Level level;
    level.ratio = r;
    level.model = models::width_config(global.config(), r, "--width-ratios");
    // The sub-model is built only to read its layout (its values are never used).
    m_layouts.push_back(std::make_unique<models::Gan>(level.model, global.device()));
    m_levels.push_back(std::move(level));
  }
  place(0);
  m_party_level.resize(config.party_ratio.size());
  for (std::size_t k = 0; k < config.party_ratio.size(); ++k) {
    const auto it = std::find(ratios.begin(), ratios.end(), config.party_ratio[k]);
    m_party_level[k] = static_cast<int>(it - ratios.begin());
    m_levels[static_cast<std::size_t>(m_party_level[k])].parties.push_back(static_cast<int>(k));
  }
}

void WidthLevels::place(std::int64_t roll_step) {
  const auto& global = *m_global;
  const auto& plans = *m_plans;
  const auto device = global.device();
  m_roll_step = roll_step;
  for (std::size_t l = 0; l < m_levels.size(); ++l) {
    auto& level = m_levels[l];
    level.slice = models::width_slice(global, *m_layouts[l], roll_step);
    // --width-average all: every level counts at every value (its update is 0 where it holds
    // nothing), so each value's weight is the round's Σw, as in plain FedAvg.
    const bool all = m_config.average == WidthAverage::All;
    auto held = [&](const torch::Tensor& index, std::int64_t numel) {
      const auto options = torch::TensorOptions().dtype(torch::kFloat64).device(device);
      if (all) return torch::ones({numel}, options);
      return torch::zeros({numel}, options).index_fill_(0, index, 1.0);
    };
    const auto g = held(level.slice.g, global.g_flat().numel());
    const auto d = held(level.slice.d, global.d_flat().numel());
    const bool buffers = m_config.bn == WidthBn::Shared;
    auto none = [&](const torch::Tensor& index) {
      return torch::zeros({index.numel()}, g.options());
    };
    level.coverage = {
        g.index_select(0, plans.g.param_index),
        buffers ? g.index_select(0, plans.g.buffer_index) : none(plans.g.buffer_index),
        d.index_select(0, plans.d.param_index),
        buffers ? d.index_select(0, plans.d.buffer_index) : none(plans.d.buffer_index)};
  }
}

bool WidthLevels::begin_round(int round) {
  if (m_config.slicing != WidthSlicing::Rolling) return false;
  const std::int64_t step = std::max(0, round - 1);
  if (step == m_roll_step) return false;
  place(step);
  return true;
}

int WidthLevels::level_of(int party) const {
  require(party >= 0 && static_cast<std::size_t>(party) < m_party_level.size(),
          "width levels: party " + std::to_string(party) + " has no width ratio");
  return m_party_level[static_cast<std::size_t>(party)];
}

std::string WidthLevels::cost_table() const {
  std::string out = fmt::format("{:>6} {:>8} {:>11} {:>11} {:>11} {:>11} {:>13}\n", "ratio",
                                "parties", "G values", "D values", "G MMAC/img", "D MMAC/img",
                                "MB/round/party");
  for (std::size_t l = 0; l < m_levels.size(); ++l) {
    const auto& level = m_levels[l];
    const auto cost = models::model_cost(*m_layouts[l]);
    // A party downloads its sub-model and uploads its update of the aggregated coordinates it
    // holds (float32 each way).
    double held = 0;
    for (const auto& c : level.coverage) held += c.sum().item<double>();
    const double mb = 2.0 * 4.0 * held / 1e6;
    out += fmt::format("{:>6g} {:>8} {:>11} {:>11} {:>11.2f} {:>11.2f} {:>13.2f}\n", level.ratio,
                       level.parties.size(), cost.g_values, cost.d_values, cost.g_macs / 1e6,
                       cost.d_macs / 1e6, mb);
  }
  return out;
}

}  // namespace fedgan::federated
