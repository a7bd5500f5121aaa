// Width-heterogeneous parties (HeteroFL, Diao et al., ICLR 2021): each party trains the sub-model
// of its width ratio; the distinct ratios are the federation's levels. WidthLevels holds, per
// level, the sub-model's architecture, where its values lie in the global flat buffers
// (models::WidthSlice) and which aggregated coordinates it holds (its coverage, in the plans'
// segment layout), from which the aggregate's per-coordinate weights come (docs/DESIGN.md,
// "Heterogeneous widths").
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "fedgan/core/choice.hpp"
#include "fedgan/federated/server/server_step.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/models/width.hpp"

namespace fedgan::federated {

// --width-bn: how a federation of widths keeps BatchNorm running statistics.
//  static: HeteroFL's sBN. No party sends statistics; after each server step G's statistics are
//          recomputed from its own activations on fixed latents (models::recompute_generator_bn),
//          and a sub-model's when it is cut out for sampling. D's statistics are not aggregated.
//  shared: the statistics are coordinates like the parameters, each averaged over its holders.
enum class WidthBn { Static, Shared };
const ChoiceTable<Choice<WidthBn>>& width_bns();

// --width-slicing: which channels a sub-model takes.
//  leading: the leading ⌊r·C⌋ of every hidden layer, every round (HeteroFL).
//  rolling: a window that moves by one base-width step per round (FedRolex, Alam et al. 2022),
//           so every channel of the global model is trained by parties of every width.
enum class WidthSlicing { Leading, Rolling };
const ChoiceTable<Choice<WidthSlicing>>& width_slicings();

// --width-average: over whom a value of the global model is averaged.
//  holders: the round's parties that hold it (HeteroFL); a value nobody held stays unchanged.
//  all: every participant of the round, a party that does not hold it counting as no change
//       (zero-padded updates, FedAvg's weights), so values only wide parties hold move by their
//       share of the round's samples.
enum class WidthAverage { Holders, All };
const ChoiceTable<Choice<WidthAverage>>& width_averages();

struct WidthConfig {
  // The width ratio of every party, by party id; empty: no widths (every party trains the
  // global model, the plain round).
  std::vector<double> party_ratio;
  WidthBn bn = WidthBn::Static;
  // HeteroFL's 1/r scaler in the sub-models (models::make_submodel); off by default: it did not
  // sample better on the demo's task (docs/results/heterogeneous.md).
  bool scaler = false;
  WidthSlicing slicing = WidthSlicing::Leading;
  WidthAverage average = WidthAverage::Holders;
  bool active() const { return !party_ratio.empty(); }
  // "1,0.5,0.25,0.25 bn=static scaler=off slicing=leading average=holders": what a checkpoint
  // records and a resume must match.
  std::string to_string() const;
  // The inverse of to_string(); fedgan::Error naming `where` (a checkpoint's attribute).
  static WidthConfig parse(const std::string& text, const std::string& where);
};

// "1,0.5,0.25" as numbers ("" none): --width-ratios and the ratios of a checkpoint's widths.
// fedgan::Error "WHAT: 'x' is not a number (...)" for an item that is not one (the range is
// checked per party by WidthLevels).
std::vector<double> parse_width_ratios(const std::string& text, const std::string& what);

// The seed of static BN's fixed latents (the same on every rank and at every round).
std::uint64_t static_bn_seed(std::uint64_t run_seed);

// The sub-model at `ratio` of a trained global model, ready to sample (`fedgan sample/eval
// --width-ratio`): sliced, with the run's scaler, and under static BN with G's statistics
// recomputed at that width (seed static_bn_seed(0)). `widths`: the run's (a checkpoint's
// attribute), or the defaults for a model trained without widths.
std::unique_ptr<models::Gan> cut_submodel(const models::Gan& global, double ratio,
                                          const WidthConfig& widths, const std::string& what);

class WidthLevels {
 public:
  // Levels are the distinct ratios, widest first. fedgan::Error (naming the party) for a ratio
  // outside (0, 1] or one that leaves a layer with no channel.
  WidthLevels(const WidthConfig& config, const models::Gan& global, const ModelPlans& plans);

  const WidthConfig& config() const { return m_config; }
  int levels() const { return static_cast<int>(m_levels.size()); }
  double ratio(int level) const { return m_levels.at(level).ratio; }
  int level_of(int party) const;
  const models::ModelConfig& model(int level) const { return m_levels.at(level).model; }
  // Moves the levels to round `round` (1-based): under rolling slicing each level's window
  // rotates by round − 1 base-width steps (slices and coverage recomputed); leading: nothing.
  // Returns whether the coverage changed.
  bool begin_round(int round);
  // This round's slice of a level.
  const models::WidthSlice& slice(int level) const { return m_levels.at(level).slice; }
  // Per Segment, float64 0/1 on the global device: the aggregated coordinates (the plans'
  // indices) that a party of this level holds this round. Static BN: no buffer coordinate.
  const std::vector<torch::Tensor>& coverage(int level) const {
    return m_levels.at(level).coverage;
  }
  // The cost table for the run's log: per level its parties, values, MACs per image and the
  // bytes a party moves per round.
  std::string cost_table() const;

 private:
  // Each level's slice and coverage at rotation `roll_step`.
  void place(std::int64_t roll_step);

  struct Level {
    double ratio = 1;
    models::ModelConfig model;
    models::WidthSlice slice;
    std::vector<torch::Tensor> coverage;
    std::vector<int> parties;
  };
  WidthConfig m_config;
  const models::Gan* m_global = nullptr;
  const ModelPlans* m_plans = nullptr;
  std::vector<std::unique_ptr<models::Gan>> m_layouts;  // one per level: its shapes only
  std::int64_t m_roll_step = 0;
  std::vector<Level> m_levels;
  std::vector<int> m_party_level;
};

}  // namespace fedgan::federated
