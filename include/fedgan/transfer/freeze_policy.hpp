// Fine-tuning policies: freeze the first N blocks (FreezeD, Mo et al. 2020), train only
// parameters matching patterns, per-block learning-rate multipliers. The result is a plan over
// a model's flat buffer: a per-element lr scale (0 = frozen) and the indices that are
// aggregated, so frozen values never enter the allreduce and never change.
#pragma once

#include "fedgan/models/flat_parameters.hpp"

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace fedgan::transfer {

struct FreezeConfig {
  int freeze_blocks = 0;                 // the first N blocks of the model are frozen
  std::vector<std::string> train_only;   // if set: only parameters matching one glob train
  std::vector<std::pair<std::string, double>> lr_mult;  // block/name prefix -> lr multiplier
  // Per-element masks (AdAM's modulation, transfer/modulation.hpp): a parameter named here
  // trains only where its bool mask (of its shape) is true; elsewhere it is frozen like a frozen
  // block (lr scale 0, not aggregated). With masked_only, every parameter not named here is
  // frozen too (buffers are not: BatchNorm statistics still follow the data).
  std::map<std::string, torch::Tensor> masks;
  bool masked_only = false;
};

struct ParameterPlan {
  torch::Tensor lr_scale;      // float32 [parameter_numel]: 0 frozen, else the multiplier
  torch::Tensor param_index;   // int64: trainable parameter elements (aggregated)
  torch::Tensor buffer_index;  // int64 flat indices of aggregated buffer elements
  std::vector<std::string> frozen;  // frozen parameter names
  std::int64_t trainable_numel = 0;
  bool identity = true;        // nothing frozen, no multipliers
};

// `blocks`: the model's block prefixes in order (Generator/Discriminator::block_prefixes()).
// Throws when freeze_blocks exceeds the block count. `matched` (optional) receives the
// train_only patterns that matched something here.
ParameterPlan make_plan(const models::FlatParameters& flat, const std::vector<std::string>& blocks,
                        const FreezeConfig& config, const std::string& what,
                        std::vector<std::string>* matched = nullptr);

// "blocks.0=0.1,out=2" -> pairs (the --lr-mult-g/d options).
std::vector<std::pair<std::string, double>> parse_lr_mult(const std::string& text,
                                                          const std::string& option);

// Glob match with '*' (any run of characters) and '?' (one character).
bool glob_match(const std::string& pattern, const std::string& name);

}  // namespace fedgan::transfer
