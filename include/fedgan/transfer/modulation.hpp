// AdAM's importance-probed kernel modulation for fine-tuning G (Zhao et al., NeurIPS 2022,
// "Few-shot Image Generation via Adaptation-Aware Kernel Modulation"): G's base stays the
// source's, only the low-rank modulations (models/modulation.hpp) of the filters that a short
// probe finds important train. This file: the settings, the probe's Fisher accumulator (a
// Regularizer), the choice of filters, the plan that freezes everything else, and the mask file.
// The federated probe itself (parties' data, the one allreduce) is the run's
// (run/modulation_setup.cpp).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fedgan/models/modulation.hpp"
#include "fedgan/train/regularizer.hpp"
#include "fedgan/transfer/freeze_policy.hpp"

namespace fedgan::transfer {

struct ModulationConfig {
  double keep = 0.5;      // --modulation-keep: fraction of each layer's filters that train
  int probe_steps = 40;   // --modulation-probe-steps: 0 = no probe, every filter trains
  std::string mask_file;  // --modulation-mask: a mask an earlier run wrote (skips the probe)
};

// The empirical Fisher of each filter's modulation row during a party's probe: after every G
// backward, Σ_r (∂L_G/∂A[f, r])² of each filter f (float64, on the training device), summed over
// the G steps; mean() is that sum over the steps taken, on the CPU (AdAM's importance, per
// filter).
class FisherProbe : public train::Regularizer {
 public:
  explicit FisherProbe(std::vector<models::ModulatedLayer> layers);
  void begin_party(const train::PartyStart&) override;
  void before_step(train::Net net, const torch::Tensor& params, torch::Tensor& grad) override;
  // Per filter, every layer's in order: the mean over this party's G steps (float64, CPU).
  torch::Tensor mean() const;

 private:
  std::vector<models::ModulatedLayer> m_layers;
  torch::Tensor m_sum;  // float64 [filters of all layers]
  std::int64_t m_steps = 0;
};

// Total filters of `layers` (the length of a score or mask vector).
std::int64_t total_filters(const std::vector<models::ModulatedLayer>& layers);

// Per layer, the ⌈keep·filters⌉ filters of highest score (ties: the lower index) → 1, others 0
// (int64 [total_filters]). keep in (0, 1].
torch::Tensor select_filters(const torch::Tensor& scores,
                             const std::vector<models::ModulatedLayer>& layers, double keep);

// The generator's plan for a filter mask: every base parameter frozen (masked_only), each
// layer's A trains in the rows of its kept filters, its B when any filter of the layer is kept.
// Adds to `config` (its block freezing, patterns and multipliers stay).
void add_modulation_masks(FreezeConfig& config, const std::vector<models::ModulatedLayer>& layers,
                          const torch::Tensor& mask);

// OUT/modulation_mask.h5 (format "fedgan-modulation-mask-1"): /mask (int64 [F]), /scores
// (float64 [F]; empty without a probe), attributes architecture, keep, probe_steps, layers
// (the layer prefixes). Written atomically.
struct ModulationMask {
  torch::Tensor mask, scores;
  std::string architecture;
  double keep = 0;
  std::int64_t probe_steps = 0;
  std::vector<std::string> layers;
};
void write_modulation_mask(const std::string& path, const ModulationMask& mask);
// Reads a mask and checks it against this model: fedgan::Error naming `path`, `what` (the
// option) and what differs (another architecture, other layers, another length, non-0/1 values).
ModulationMask read_modulation_mask(const std::string& path, const std::string& what,
                                    const std::string& architecture,
                                    const std::vector<models::ModulatedLayer>& layers);
// The same check of a mask already in memory (a checkpoint's): fedgan::Error naming `where`.
void check_modulation_mask(const torch::Tensor& mask, const std::string& where,
                           const std::vector<models::ModulatedLayer>& layers);

}  // namespace fedgan::transfer
