// The evaluator: fedgan's own feature network for FID/KID/precision-recall. A small CNN
// classifier trained on the domain (as TF-GAN does for MNIST, since InceptionV3 suits 28x28
// grayscale poorly and cannot be downloaded here); its penultimate layer gives the features.
// Stored as HDF5: /feature_net/<name> tensors plus architecture, image shape and checksum.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace fedgan::eval {

inline constexpr const char* kEvaluatorFormat = "fedgan-evaluator-1";

// The largest side the two convolutions see; larger images pass the stem first.
inline constexpr int kFeatureNetMaxSide = 32;

// What fixes the feature network's shape; its text form is stored in the evaluator file.
struct FeatureNetConfig {
  int channels = 1;       // image channels C (1 grey, 3 RGB)
  int image_size = 28;    // H = W: a multiple of 4 up to 32, or one halved to that (64, 128)
  int num_classes = 10;   // classifier outputs
  int width = 32;         // channels of the first convolution (the second has 2*width)
  int feature_dim = 128;  // the penultimate layer: the features

  // e.g. "cnn c=1 s=28 k=10 w=32 f=128"; parse() is its inverse (fedgan::Error otherwise).
  // A missing c or s means 1 or 28 (the Fashion-MNIST evaluator).
  std::string to_string() const;
  static FeatureNetConfig parse(const std::string& text);
  // Stride-2 stem steps before the two convolutions: 0 up to 32 pixels, 1 at 64, 2 at 128.
  int stem_steps() const;
};

// [stem: (conv4x4 stride 2 (C or w -> w) BN ReLU) x stem_steps, only above 32 pixels]
// conv3x3(C or w -> w) BN ReLU pool2, conv3x3(w->2w) BN ReLU pool2, linear(2w*g*g -> f) ReLU
// [features], dropout, linear(f->k) [logits]. The grid g is 7 at 28 pixels and 8 at 32, 64 and
// 128, so the features have the same dimension f at every size and cost about the same to
// compute; at 28 and 32 pixels there is no stem (the network and its weights for a seed are those
// of the first evaluators).
struct FeatureNetImpl : torch::nn::Module {
  explicit FeatureNetImpl(const FeatureNetConfig& config);
  // Images in [-1, 1], [B, C, H, W] -> features [B, feature_dim].
  torch::Tensor features(const torch::Tensor& images);
  // Images -> class logits [B, num_classes].
  torch::Tensor forward(const torch::Tensor& images);

  FeatureNetConfig config;
  torch::nn::Sequential stem{nullptr};  // empty up to 32 pixels
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Linear fc{nullptr}, head{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(FeatureNet);

// A trained feature network as read from (or written to) its file.
class Evaluator {
 public:
  // A fresh, untrained network (weights from torch's global generator).
  explicit Evaluator(const FeatureNetConfig& config);
  // Reads an evaluator file: fedgan::Error naming the file for a missing file, another format,
  // an input shape attribute that contradicts the architecture, a missing or misshapen tensor
  // (an evaluator above 32 pixels from before the stem is refused by name), or a checksum that
  // does not match the weights.
  static Evaluator load(const std::string& path);
  // Writes atomically (temporary file + rename) and records the checksum.
  void save(const std::string& path) const;

  const FeatureNetConfig& config() const { return m_config; }
  FeatureNet& net() { return m_net; }
  int feature_dim() const { return m_config.feature_dim; }
  // FNV-1a over the names, shapes and bytes of every parameter and buffer, as 16 hex digits:
  // the key of cached real statistics (a retrained evaluator never reuses them).
  std::string checksum() const;
  // Where it was loaded from (empty for a fresh one) and what it was trained on.
  const std::string& path() const { return m_path; }
  std::string description;    // training data and recipe, free text
  double test_accuracy = -1;  // < 0: not measured

  // Features of images in [-1, 1] [N, C, H, W] (float32 [N, feature_dim]), in eval mode
  // without gradients, `batch` images per forward (the float32 results may depend on it).
  // fedgan::Error for another image shape, naming `what` (the file the images came from).
  torch::Tensor features(const torch::Tensor& images, const std::string& what, int batch = 500);
  // Features of one chunk of images in a single forward: the unit of evaluation arithmetic.
  // No mode switch and no checks, so several threads may call it at once; the caller puts the
  // network in eval mode (EvalModeScope) and checks the image shape.
  torch::Tensor embed(const torch::Tensor& images);
  // The input shape C x H x W, e.g. "3x64x64".
  std::string input_shape() const;
  // Checks that images of shape {C, H, W} fit; fedgan::Error naming `what`, both shapes and the
  // evaluator file otherwise.
  void check_image_shape(std::int64_t channels, std::int64_t height, std::int64_t width,
                         const std::string& what) const;

 private:
  FeatureNetConfig m_config;
  FeatureNet m_net;
  std::string m_path;
};

}  // namespace fedgan::eval
