// Generator compression: train a smaller student generator to reproduce a teacher on the same
// latent vectors, with a pixel loss and a feature loss through the teacher's discriminator.
#pragma once

#include "fedgan/models/gan.hpp"

#include <cstdint>

namespace fedgan::transfer {

struct DistillConfig {
  int steps = 2000;
  int batch_size = 64;
  double lr = 1e-3;
  double feature_weight = 1.0;  // weight of the D-feature loss beside the pixel loss
  std::uint64_t seed = 0;
};

struct DistillResult {
  double pixel_loss = 0;     // mean (S(z) - T(z))² over a held-out latent batch, at the end
  double feature_loss = 0;   // mean (D_f(S(z)) - D_f(T(z)))² on the same batch
  double initial_pixel_loss = 0;  // the same before training
  std::int64_t teacher_params = 0, student_params = 0;
};

// Trains `student` (G) in place; the teacher's G and D are not changed.
DistillResult distill(models::Gan& teacher, models::Gan& student, const DistillConfig& config);

}  // namespace fedgan::transfer
