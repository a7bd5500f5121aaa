// The round's guard on the global model after the server step (docs/DESIGN.md, "Errors: every
// rank agrees"): a model whose values are NaN/inf, or whose outputs are (weights of 1e25 are
// finite but overflow any forward; a negative BatchNorm running variance is NaN in eval mode),
// must not reach a sample grid, a checkpoint, the EMA or the next round. FederatedTrainer::
// run_round inspects the model after each server step, puts the previous model back and stops
// every rank with unusable_model_message when it fails.
#pragma once

#include <cstdint>
#include <string>

#include "fedgan/models/gan.hpp"

namespace fedgan::federated {

// What inspect_model found. Every rank holds the same global model, so every rank finds the same.
struct ModelHealth {
  std::int64_t g_values = 0, d_values = 0;        // flat values (parameters and float buffers)
  std::int64_t g_nonfinite = 0, d_nonfinite = 0;  // of them NaN/inf
  double g_max_abs = 0, d_max_abs = 0;            // largest |value| (inf or NaN when not finite)
  // The probe, in eval mode (as sample grids and evaluation run the model): G's images of
  // fixed latents and D's logits of fixed images in [-1, 1]; run only when the values are finite.
  bool probed = false;
  std::int64_t g_probe_values = 0, g_probe_nonfinite = 0;
  std::int64_t d_probe_values = 0, d_probe_nonfinite = 0;
  int probe_inputs = 0;

  bool ok() const;
  // What is wrong, with the numbers ("" when ok).
  std::string describe() const;
};

// Inspects the global model: one |value| maximum per flat buffer (NaN/inf are counted only when
// it is not finite) and, when every value is finite, the probe of `probe_inputs` fixed inputs
// drawn from their own generator. Leaves the model, its train/eval mode and every random
// generator as they were.
ModelHealth inspect_model(models::Gan& gan, int probe_inputs = 8);

// The round's numbers that say why the model may have become unusable.
struct RoundSuspects {
  int round = 0;
  std::string aggregator;             // --aggregator's name
  std::int64_t parties = 0;           // contributing parties
  double denominator = 0;             // the aggregate's sums are divided by it
  double g_mean_max_abs = 0;          // largest |mean update| of G (parameters and buffers)
  double d_mean_max_abs = 0;          // ... of D
  std::string attack;                 // "scale:1e+30 by parties 0,3", "" without --attack
  std::string server_optimizer;       // --server-optimizer
  double server_lr = 1;               // --server-lr
  double lr_g = 0, lr_d = 0;          // --lr-g, --lr-d
};

// The agreed error's message: the round, what is wrong with the model, that the previous model
// was put back and nothing of the round is written, and the likely causes with their numbers.
std::string unusable_model_message(const ModelHealth& health, const RoundSuspects& suspects);

}  // namespace fedgan::federated
