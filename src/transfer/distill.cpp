// Generator distillation (see include/fedgan/transfer/distill.hpp).
#include "fedgan/transfer/distill.hpp"

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/train/flat_adam.hpp"
#include "fedgan/train/local_trainer.hpp"
#include "fedgan/transfer/kd_regularizer.hpp"

namespace fedgan::transfer {

DistillResult distill(models::Gan& teacher, models::Gan& student, const DistillConfig& c) {
  const auto& tc = teacher.config();
  const auto& sc = student.config();
  require(tc.latent_dim == sc.latent_dim && tc.num_classes == sc.num_classes &&
              tc.image_size == sc.image_size && tc.channels == sc.channels,
          "distill: student and teacher must share latent size, classes and image shape");
  require(c.steps >= 1 && c.batch_size >= 1, "distill: steps and batch size must be >= 1");
  teacher.train(false);
  student.generator().train();
  train::FlatAdam opt(student.g_flat().parameters_view(), student.g_grad(),
                      train::AdamOptions{c.lr, 0.5, 0.999, 1e-8});
  auto gen = compat::make_cpu_generator(c.seed);
  auto labels_for = [&](std::int64_t b) {
    return tc.num_classes > 0 ? torch::randint(0, tc.num_classes, {b}, gen, torch::kInt64)
                              : torch::Tensor();
  };
  // A fixed held-out batch measures the result.
  auto held_gen = compat::make_cpu_generator(c.seed + 7919);
  const auto z_held = torch::randn({256, tc.latent_dim}, held_gen);
  const auto y_held = tc.num_classes > 0
                          ? torch::arange(256, torch::kInt64) % tc.num_classes
                          : torch::Tensor();
  auto measure = [&](DistillResult& r, bool initial) {
    torch::NoGradGuard g;
    student.generator().eval();
    auto s = student.generator().forward(z_held, y_held);
    auto t = teacher.generator().forward(z_held, y_held);
    const double pixel = kd_loss(s, t).item<double>();
    if (initial) {
      r.initial_pixel_loss = pixel;
    } else {
      r.pixel_loss = pixel;
      r.feature_loss =
          kd_loss(teacher.discriminator().features(s), teacher.discriminator().features(t))
              .item<double>();
    }
    student.generator().train();
  };
  DistillResult result;
  result.teacher_params = teacher.g_flat().parameter_numel();
  result.student_params = student.g_flat().parameter_numel();
  measure(result, true);
  for (auto& p : teacher.discriminator().parameters()) p.requires_grad_(false);
  for (int step = 0; step < c.steps; ++step) {
    const auto z = torch::randn({c.batch_size, tc.latent_dim}, gen);
    const auto y = labels_for(c.batch_size);
    torch::Tensor target, target_features;
    {
      torch::NoGradGuard g;
      target = teacher.generator().forward(z, y);
      target_features = teacher.discriminator().features(target);
    }
    student.g_grad().zero_();
    auto out = student.generator().forward(z, y);
    auto loss =
        kd_loss(out, target) +
        c.feature_weight * kd_loss(teacher.discriminator().features(out), target_features);
    loss.backward();
    opt.step();
    if (!std::isfinite(loss.item<double>()))
      throw Error("distill: the loss became non-finite at step " + std::to_string(step) +
                  "; lower --lr");
  }
  for (auto& p : teacher.discriminator().parameters()) p.requires_grad_(true);
  measure(result, false);
  return result;
}

}  // namespace fedgan::transfer
