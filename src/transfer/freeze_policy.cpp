// Fine-tuning plans (see include/fedgan/transfer/freeze_policy.hpp).
#include "fedgan/transfer/freeze_policy.hpp"

#include <fnmatch.h>

#include <cmath>
#include <sstream>

#include "fedgan/core/error.hpp"

namespace fedgan::transfer {
namespace {

bool in_prefix(const std::string& name, const std::string& prefix) {
  return name == prefix || name.rfind(prefix + ".", 0) == 0;
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& name) {
  return fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

std::vector<std::pair<std::string, double>> parse_lr_mult(const std::string& text,
                                                          const std::string& option) {
  std::vector<std::pair<std::string, double>> out;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    double value = -1;
    try {
      if (eq != std::string::npos) value = std::stod(item.substr(eq + 1));
    } catch (const std::exception&) {
    }
    if (eq == std::string::npos || !(value >= 0) || !std::isfinite(value))
      throw Error(option + ": '" + item +
                  "' is not of the form prefix=multiplier (a finite multiplier >= 0)");
    out.emplace_back(item.substr(0, eq), value);
  }
  return out;
}

ParameterPlan make_plan(const models::FlatParameters& flat, const std::vector<std::string>& blocks,
                        const FreezeConfig& config, const std::string& what,
                        std::vector<std::string>* matched) {
  if (config.freeze_blocks < 0 || config.freeze_blocks > static_cast<int>(blocks.size()))
    throw Error("--freeze-" + what.substr(0, 1) + " " + std::to_string(config.freeze_blocks) +
                ": the " + what + " has " + std::to_string(blocks.size()) + " blocks");
  ParameterPlan plan;
  plan.lr_scale = torch::ones({flat.parameter_numel()});
  std::vector<std::int64_t> params, buffers;
  for (const auto& e : flat.entries()) {
    bool frozen = false;
    for (int b = 0; b < config.freeze_blocks; ++b) frozen = frozen || in_prefix(e.name, blocks[b]);
    if (!config.train_only.empty()) {
      bool any = false;
      for (const auto& pattern : config.train_only) {
        if (glob_match(pattern, e.name)) {
          any = true;
          if (matched) matched->push_back(pattern);
        }
      }
      frozen = frozen || !any;
    }
    const auto mask_it = config.masks.find(e.name);
    const bool masked = !e.is_buffer && mask_it != config.masks.end();
    if (!e.is_buffer && config.masked_only && !masked) frozen = true;
    torch::Tensor mask;
    if (masked && !frozen) {
      mask = mask_it->second.to(torch::kCPU).to(torch::kBool).reshape({-1});
      require(mask.numel() == e.numel, "fine-tuning: the mask of " + e.name + " has " +
                                           std::to_string(mask.numel()) + " values, the " + what +
                                           "'s tensor " + std::to_string(e.numel));
      if (!mask.any().item<bool>()) frozen = true;
    }
    if (e.is_buffer) {
      if (!frozen)
        for (std::int64_t i = 0; i < e.numel; ++i) buffers.push_back(e.offset + i);
      continue;
    }
    double scale = frozen ? 0.0 : 1.0;
    for (const auto& [prefix, mult] : config.lr_mult)
      if (!frozen && in_prefix(e.name, prefix)) scale = mult;
    if (scale != 1.0) {
      plan.identity = false;
      plan.lr_scale.narrow(0, e.offset, e.numel).fill_(scale);
    }
    if (frozen) {
      plan.frozen.push_back(e.name);
      continue;
    }
    if (mask.defined() && !mask.all().item<bool>()) {
      // Only the mask's elements train: the rest get lr scale 0 and stay out of the aggregate.
      plan.identity = false;
      plan.lr_scale.narrow(0, e.offset, e.numel).mul_(mask.to(torch::kFloat32));
      const auto* m = mask.data_ptr<bool>();
      for (std::int64_t i = 0; i < e.numel; ++i)
        if (m[i]) params.push_back(e.offset + i);
      continue;
    }
    for (std::int64_t i = 0; i < e.numel; ++i) params.push_back(e.offset + i);
  }
  // A multiplier whose prefix names nothing would silently change nothing (blocks.9 of a
  // 3-block model): refuse it, naming what exists.
  for (const auto& entry : config.lr_mult) {
    const auto& prefix = entry.first;
    bool any = false;
    for (const auto& e : flat.entries()) any = any || in_prefix(e.name, prefix);
    if (!any) {
      std::string known;
      for (const auto& b : blocks) known += (known.empty() ? "" : ", ") + b;
      throw Error("--lr-mult-" + what.substr(0, 1) + ": prefix '" + prefix +
                  "' matches no parameter of the " + what + " (its blocks: " + known +
                  "; a prefix is a block or a parameter name)");
    }
  }
  plan.param_index = torch::tensor(params, torch::kInt64);
  plan.buffer_index = torch::tensor(buffers, torch::kInt64);
  plan.trainable_numel = static_cast<std::int64_t>(params.size());
  return plan;
}

}  // namespace fedgan::transfer
