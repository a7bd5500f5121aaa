// An exponential moving average of the global generator's weights (Karras et al. 2018;
// Yazıcı et al. 2019), kept on the server side: after each round's server step every rank
// updates it from the new global generator (same inputs everywhere, so no communication).
// It is the generator that sample grids, evaluation and checkpoints show: averaging the
// federated models of successive rounds smooths the round-to-round oscillation of GAN training.
//
// Why per round on the server and not per local step: local models are reset from the global
// one every round and exist on the rank of their party only, so a local EMA would have to be
// aggregated like an update and would average a party's few steps of one round; the server-side
// EMA averages the federated models themselves, costs one fused multiply-add per round on each
// rank, and needs no state beyond one flat tensor (saved in checkpoints).
#pragma once

#include <torch/torch.h>

namespace fedgan::run {

class GeneratorEma {
 public:
  // β in (0, 1): the decay per round (the effective β of round t is min(β, (1+t)/(10+t)), so the
  // initial model is forgotten within a few rounds). `global_values`: the generator's flat buffer
  // (parameters then float buffers), copied as the starting average.
  GeneratorEma(double beta, const torch::Tensor& global_values, std::int64_t parameter_numel);

  double beta() const { return m_beta; }
  // β used after round `round` (1-based).
  double beta_at(int round) const;
  // After round `round`'s server step: parameters ← β_t·avg + (1 − β_t)·global; float buffers
  // (BatchNorm statistics) are copied from the global generator (they are averages already).
  void update(const torch::Tensor& global_values, int round);
  // The averaged flat values (same layout as the generator's FlatParameters).
  const torch::Tensor& values() const { return m_values; }
  // Restores the average (a checkpoint's); fedgan::Error on another size.
  void load(const torch::Tensor& values);

 private:
  double m_beta;
  std::int64_t m_parameter_numel;
  torch::Tensor m_values;
};

}  // namespace fedgan::run
