// Training the evaluator (see include/fedgan/eval/evaluator_training.hpp).
#include "fedgan/eval/evaluator_training.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "fedgan/core/error.hpp"
#include "fedgan/data/random.hpp"
#include "fedgan/data/shard_loader.hpp"
#include "fedgan/io/hdf5.hpp"

namespace fedgan::eval {
namespace {

torch::Tensor unit_range(const torch::Tensor& images) {
  return images.scalar_type() == torch::kUInt8 ? data::to_unit_range(images)
                                               : images.to(torch::kFloat32);
}

}  // namespace

LabelledImages read_labelled_images(const std::string& path) {
  h5::File f(path, h5::File::Mode::Read);
  require(f.exists("/images"), path + ": missing dataset /images (expected uint8 [N,C,H,W])");
  const auto shape = f.shape("/images");
  require(f.dtype("/images") == torch::kUInt8 && shape.size() == 4,
          path + ": /images must be uint8 [N,C,H,W] (the schema `fedgan prepare` writes)");
  require(f.exists("/labels"),
          path +
              ": missing dataset /labels; the evaluator is a classifier and needs one int64 "
              "label per image (prepare a labelled dataset with `fedgan prepare`)");
  LabelledImages out;
  out.images = f.read("/images");
  out.labels = f.read("/labels");
  require(out.labels.dim() == 1 && out.labels.size(0) == out.images.size(0),
          path + ": /labels has shape " + c10::str(out.labels.sizes()) + "; expected [" +
              std::to_string(out.images.size(0)) + "], one label per image");
  require(out.images.size(0) > 0, path + ": /images is empty");
  out.labels = out.labels.to(torch::kInt64);
  out.num_classes = f.attr_int("/", "num_classes").value_or(0);
  const auto lo = out.labels.min().item<std::int64_t>();
  const auto hi = out.labels.max().item<std::int64_t>();
  if (out.num_classes <= 0) out.num_classes = hi + 1;
  require(lo >= 0 && hi < out.num_classes,
          path + ": /labels lie in [" + std::to_string(lo) + ", " + std::to_string(hi) +
              "], outside [0, num_classes = " + std::to_string(out.num_classes) + ")");
  require(out.num_classes >= 2, path + ": the evaluator needs at least 2 classes; /labels has " +
                                    std::to_string(out.num_classes));
  return out;
}

double classification_accuracy(Evaluator& evaluator, const LabelledImages& data) {
  torch::NoGradGuard no_grad;
  auto& net = evaluator.net();
  net->eval();
  std::int64_t correct = 0;
  const std::int64_t n = data.images.size(0);
  for (std::int64_t begin = 0; begin < n; begin += 1000) {
    const auto len = std::min<std::int64_t>(1000, n - begin);
    const auto logits = net->forward(unit_range(data.images.narrow(0, begin, len)));
    correct += logits.argmax(1).eq(data.labels.narrow(0, begin, len)).sum().item<std::int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(n);
}

Evaluator train_evaluator(const LabelledImages& train, const EvaluatorTrainConfig& c) {
  require(c.epochs >= 1 && c.batch_size >= 1, "evaluator: --epochs and --batch-size must be >= 1");
  FeatureNetConfig net_config;
  net_config.channels = static_cast<int>(train.images.size(1));
  net_config.image_size = static_cast<int>(train.images.size(2));
  require(train.images.size(2) == train.images.size(3),
          c.data + ": the evaluator needs square images, got " + c10::str(train.images.sizes()));
  net_config.num_classes = static_cast<int>(train.num_classes);
  net_config.width = c.width;
  net_config.feature_dim = c.feature_dim;
  torch::manual_seed(c.seed);  // weights and dropout masks
  Evaluator ev(net_config);
  auto& net = ev.net();
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(c.lr));
  const std::int64_t n = train.images.size(0);
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  // Cosine decay of the learning rate from lr to 0 over every step of training (Loshchilov &
  // Hutter 2017): it reaches a given accuracy in fewer epochs than a constant or step rate.
  const std::int64_t steps_per_epoch = n / c.batch_size + (n % c.batch_size >= 2 ? 1 : 0);
  const double total_steps =
      static_cast<double>(std::max<std::int64_t>(1, steps_per_epoch * c.epochs));
  std::int64_t step = 0;
  for (int epoch = 0; epoch < c.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    std::iota(order.begin(), order.end(), std::int64_t{0});
    data::Rng rng(data::derive_seed(c.seed, 0x65, static_cast<std::uint64_t>(epoch)));
    rng.shuffle(order);
    data::Rng augment_rng(data::derive_seed(c.seed, 0x61, static_cast<std::uint64_t>(epoch)));
    const auto perm = torch::tensor(order, torch::kInt64);
    net->train();
    double loss_sum = 0;
    std::int64_t steps = 0;
    for (std::int64_t begin = 0; begin < n; begin += c.batch_size) {
      const auto len = std::min<std::int64_t>(c.batch_size, n - begin);
      if (len < 2) break;  // BatchNorm needs two samples
      const auto idx = perm.narrow(0, begin, len);
      auto batch = train.images.index_select(0, idx);
      if (c.augment.any()) batch = augment_batch(batch, c.augment, augment_rng);
      // Channels-last (NHWC) training batches: LibTorch's CPU max-pooling and BatchNorm kernels
      // vectorise over channels there, and the oneDNN convolutions then keep that layout.
      // Profiled 2026-11-27 on 2 cores (the same LibTorch from Python): max-pooling fell from a
      // fifth of a step to a twentieth, a step from 17 to 14 ms. Evaluation (FID features) keeps
      // NCHW.
      // A copy, not contiguous(ChannelsLast): with one channel an NCHW tensor already counts as
      // channels-last contiguous and would be returned as it is, still read as NCHW.
      const auto x = unit_range(batch).to(torch::kFloat32, /*non_blocking=*/false, /*copy=*/true,
                                          torch::MemoryFormat::ChannelsLast);
      const auto y = train.labels.index_select(0, idx);
      const double lr =
          0.5 * c.lr * (1.0 + std::cos(M_PI * static_cast<double>(step++) / total_steps));
      for (auto& group : opt.param_groups())
        static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
      loss.backward();
      opt.step();
      loss_sum += loss.item<double>();
      ++steps;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    spdlog::info("evaluator: epoch {}/{}: loss {:.4f} ({:.1f} s)", epoch + 1, c.epochs,
                 loss_sum / static_cast<double>(std::max<std::int64_t>(1, steps)), seconds);
  }
  net->eval();
  return ev;
}

double run_evaluator_training(const EvaluatorTrainConfig& c) {
  require(c.force || !std::filesystem::exists(c.out),
          c.out + ": exists already; pass --force to overwrite it");
  const auto start = std::chrono::steady_clock::now();
  const auto train = read_labelled_images(c.data);
  LabelledImages test;
  if (!c.test.empty()) {
    test = read_labelled_images(c.test);
    require(test.images.sizes().slice(1) == train.images.sizes().slice(1),
            c.test + ": images are " + c10::str(test.images.sizes().slice(1)) +
                " but the training data " + c.data + " has " +
                c10::str(train.images.sizes().slice(1)));
    require(test.labels.max().item<std::int64_t>() < train.num_classes,
            c.test + ": has labels the training data " + c.data + " does not have");
  }
  spdlog::info(
      "evaluator: training on {} images of {} ({} classes), {} epochs, augment {}, seed {}",
      train.images.size(0), c.data, train.num_classes, c.epochs, c.augment.to_string(), c.seed);
  auto ev = train_evaluator(train, c);
  // Training accuracy on (at most) the first 10,000 images: an overfitting check, not a figure
  // worth classifying 60,000 images for.
  LabelledImages train_part{
      train.images.narrow(0, 0, std::min<std::int64_t>(10000, train.images.size(0))),
      train.labels.narrow(0, 0, std::min<std::int64_t>(10000, train.labels.size(0))),
      train.num_classes};
  const double train_acc = classification_accuracy(ev, train_part);
  double test_acc = -1;
  if (!c.test.empty()) test_acc = classification_accuracy(ev, test);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info(
      "evaluator: train accuracy {:.4f} (first {} images), test accuracy {} ({} test images), "
      "{:.0f} s",
      train_acc, train_part.images.size(0),
      test_acc < 0 ? std::string("not measured (no --test)") : fmt::format("{:.4f}", test_acc),
      test.images.defined() ? test.images.size(0) : 0, seconds);
  require(c.test.empty() || test_acc >= c.min_accuracy,
          c.out + ": not written: test accuracy " + fmt::format("{:.4f}", test_acc) +
              " is below --min-accuracy " + fmt::format("{:.4f}", c.min_accuracy));
  ev.test_accuracy = test_acc;
  ev.description = fmt::format(
      "trained on {} ({} images), test {} accuracy {:.4f}, train accuracy {:.4f}, epochs {}, "
      "batch {}, lr {}, augment {}, seed {}",
      c.data, train.images.size(0), c.test.empty() ? "(none)" : c.test, test_acc, train_acc,
      c.epochs, c.batch_size, c.lr, c.augment.to_string(), c.seed);
  ev.save(c.out);
  spdlog::info("evaluator: wrote {} ({}, {} features, checksum {})", c.out, ev.config().to_string(),
               ev.feature_dim(), ev.checksum());
  return test_acc;
}

}  // namespace fedgan::eval
