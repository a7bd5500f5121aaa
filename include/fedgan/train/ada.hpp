// Adaptive augmentation strength (ADA, Karras et al. 2020, sec. 3): the overfitting heuristic
// r_t = E[sign(D(x_real))] over the augmented real images D saw, and p moved by a fixed step in
// the direction of sign(r_t − target), clamped to [0, 1]. One controller for the whole
// federation: every party trains a round with the same p, reports Σ sign(D(real)) and the count
// (summed in the round's fused allreduce), and every rank makes the same update.
#pragma once

#include <cstdint>

namespace fedgan::train {

struct AdaConfig {
  double target = 0.0;  // r_t target; 0 turns ADA off (augmentation strength fixed at 1)
  double kimg = 20.0;   // thousands of real images for p to move from 0 to 1
  double initial_p = 0.0;
};

class AdaController {
 public:
  explicit AdaController(AdaConfig config);
  bool enabled() const { return m_config.target > 0; }
  // The augmentation probability for the next round: p when enabled, else 1 (plain DiffAugment).
  double probability() const { return enabled() ? m_p : 1.0; }
  double p() const { return m_p; }
  void set_p(double p);  // restore from a checkpoint; fedgan::Error outside [0, 1]
  // After a round: `sign_sum` = Σ sign(D(real)) over `count` real images and `images` = the real
  // images one party's D saw in the round (its local steps × batch), which sets the step:
  // p += sign(r_t − target) · images / (kimg · 1000). Returns r_t (0 when count is 0: p stays).
  double update(double sign_sum, double count, double images);

 private:
  AdaConfig m_config;
  double m_p;
};

}  // namespace fedgan::train
