// The evaluator's feature network and its file (see include/fedgan/eval/feature_net.hpp).
#include "fedgan/eval/feature_net.hpp"

#include <cstdio>
#include <sstream>

#include "fedgan/core/error.hpp"
#include "fedgan/io/atomic_file.hpp"
#include "fedgan/io/hdf5.hpp"

namespace fedgan::eval {
namespace {

std::string shape_text(std::int64_t c, std::int64_t h, std::int64_t w) {
  return std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
}

// Parameters and buffers (BatchNorm statistics) by name, in registration order.
std::vector<std::pair<std::string, torch::Tensor>> named_state(const torch::nn::Module& net) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : net.named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : net.named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

// The input shape attributes (channels, image_size, input_shape), where a file has them, must
// say what its architecture string says (which fixes the network); files without them read as
// their architecture, and one without c= and s= there as 1x28x28.
void check_shape_attributes(const h5::File& f, const std::string& path,
                            const FeatureNetConfig& config) {
  const auto expected = shape_text(config.channels, config.image_size, config.image_size);
  const auto refuse = [&](const std::string& attribute, const std::string& value) {
    throw Error(path + ": evaluator attribute " + attribute + " = " + value +
                " contradicts its architecture '" + config.to_string() + "' (input " + expected +
                "); the file was modified or damaged");
  };
  if (const auto c = f.attr_int("/", "channels"); c && *c != config.channels)
    refuse("channels", std::to_string(*c));
  if (const auto s = f.attr_int("/", "image_size"); s && *s != config.image_size)
    refuse("image_size", std::to_string(*s));
  if (const auto shape = f.attr_string("/", "input_shape"); shape && *shape != expected)
    refuse("input_shape", *shape);
}

}  // namespace

std::string FeatureNetConfig::to_string() const {
  std::ostringstream s;
  s << "cnn c=" << channels << " s=" << image_size << " k=" << num_classes << " w=" << width
    << " f=" << feature_dim;
  return s.str();
}

FeatureNetConfig FeatureNetConfig::parse(const std::string& text) {
  std::istringstream s(text);
  std::string family;
  if (!(s >> family) || family != "cnn")
    throw Error("evaluator architecture '" + text + "': expected it to start with 'cnn'");
  FeatureNetConfig c;
  std::string item;
  while (s >> item) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw Error("evaluator architecture: bad item '" + item + "'");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    int v = 0;
    try {
      v = std::stoi(value);
    } catch (const std::exception&) {
      throw Error("evaluator architecture: '" + item + "' is not a number");
    }
    if (key == "c")
      c.channels = v;
    else if (key == "s")
      c.image_size = v;
    else if (key == "k")
      c.num_classes = v;
    else if (key == "w")
      c.width = v;
    else if (key == "f")
      c.feature_dim = v;
    else
      throw Error("evaluator architecture: unknown key '" + key + "'");
  }
  return c;
}

int FeatureNetConfig::stem_steps() const {
  int steps = 0;
  for (int side = image_size; side > kFeatureNetMaxSide && side % 2 == 0; side /= 2) ++steps;
  return steps;
}

FeatureNetImpl::FeatureNetImpl(const FeatureNetConfig& c) : config(c) {
  require(c.channels >= 1 && c.width >= 1 && c.feature_dim >= 1,
          "evaluator: channels, width and feature dimension must be positive");
  const int steps = c.stem_steps();
  const int side = c.image_size >> steps;  // what conv1 sees
  require(c.image_size >= 4 && side % 4 == 0 && side <= kFeatureNetMaxSide,
          "evaluator: image size " + std::to_string(c.image_size) +
              " must be a multiple of 4 up to " + std::to_string(kFeatureNetMaxSide) +
              ", or halve to one (e.g. 64, 128)");
  require(c.num_classes >= 2,
          "evaluator: needs at least 2 classes, got " + std::to_string(c.num_classes));
  namespace nn = torch::nn;
  // Registered only when there is one, before conv1 (registration order fixes the draw of the
  // weights for a seed): up to 32 pixels the network is exactly the first evaluators'.
  if (steps > 0) {
    stem = register_module("stem", nn::Sequential());
    for (int i = 0; i < steps; ++i) {
      // DCGAN's discriminator step (4x4, stride 2, padding 1: exactly half the side).
      stem->push_back(nn::Conv2d(
          nn::Conv2dOptions(i == 0 ? c.channels : c.width, c.width, 4).stride(2).padding(1)));
      stem->push_back(nn::BatchNorm2d(c.width));
      stem->push_back(nn::ReLU());
    }
  }
  const int in = steps > 0 ? c.width : c.channels;
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(in, c.width, 3).padding(1)));
  bn1 = register_module("bn1", nn::BatchNorm2d(c.width));
  conv2 =
      register_module("conv2", nn::Conv2d(nn::Conv2dOptions(c.width, 2 * c.width, 3).padding(1)));
  bn2 = register_module("bn2", nn::BatchNorm2d(2 * c.width));
  const int grid = side / 4;
  fc = register_module("fc", nn::Linear(2 * c.width * grid * grid, c.feature_dim));
  dropout = register_module("dropout", nn::Dropout(0.3));
  head = register_module("head", nn::Linear(c.feature_dim, c.num_classes));
}

torch::Tensor FeatureNetImpl::features(const torch::Tensor& images) {
  const auto x = stem ? stem->forward(images) : images;
  auto h = torch::max_pool2d(torch::relu(bn1(conv1(x))), 2);
  h = torch::max_pool2d(torch::relu(bn2(conv2(h))), 2);
  return torch::relu(fc(h.flatten(1)));
}

torch::Tensor FeatureNetImpl::forward(const torch::Tensor& x) { return head(dropout(features(x))); }

Evaluator::Evaluator(const FeatureNetConfig& config) : m_config(config), m_net(config) {}

std::string Evaluator::checksum() const {
  std::uint64_t h = 1469598103934665603ull;
  const auto mix = [&h](const void* data, std::size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
  };
  for (const auto& [name, t] : named_state(*m_net)) {
    mix(name.data(), name.size());
    const auto c = t.detach().contiguous();
    for (const auto s : c.sizes()) mix(&s, sizeof s);
    mix(c.data_ptr(), static_cast<std::size_t>(c.numel()) * c.element_size());
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

void Evaluator::save(const std::string& path) const {
  io::write_atomically(path, [&](const std::string& temp) {
    h5::File f(temp, h5::File::Mode::Create);
    f.set_attr("/", "format", std::string(kEvaluatorFormat));
    f.set_attr("/", "architecture", m_config.to_string());
    f.set_attr("/", "channels", static_cast<std::int64_t>(m_config.channels));
    f.set_attr("/", "image_size", static_cast<std::int64_t>(m_config.image_size));
    f.set_attr("/", "input_shape", input_shape());
    f.set_attr("/", "feature_dim", static_cast<std::int64_t>(m_config.feature_dim));
    f.set_attr("/", "checksum", checksum());
    f.set_attr("/", "description", description);
    f.set_attr("/", "test_accuracy", test_accuracy);
    f.create_group("/feature_net");
    for (const auto& [name, t] : named_state(*m_net)) f.write("/feature_net/" + name, t);
    f.close();
  });
}

Evaluator Evaluator::load(const std::string& path) {
  h5::File f(path, h5::File::Mode::Read);
  h5::require_format(f, kEvaluatorFormat, "evaluator", "; create one with `fedgan evaluator`");
  const auto arch = f.attr_string("/", "architecture");
  require(arch.has_value(), path + ": evaluator has no attribute 'architecture'");
  FeatureNetConfig config;
  try {
    config = FeatureNetConfig::parse(*arch);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  check_shape_attributes(f, path, config);
  Evaluator ev(config);
  ev.m_path = path;
  ev.description = f.attr_string("/", "description").value_or("");
  ev.test_accuracy = f.attr_double("/", "test_accuracy").value_or(-1.0);
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : named_state(*ev.m_net)) {
    const std::string key = "/feature_net/" + name;
    require(f.exists(key) || name.rfind("stem.", 0) != 0,
            path + ": this " + ev.input_shape() +
                " evaluator comes from a fedgan whose feature network had no stem for images "
                "above 32 pixels (it lacks " +
                key + "); train it again with `fedgan evaluator`");
    require(f.exists(key), path + ": evaluator lacks " + key + " (architecture " + *arch + ")");
    const auto stored = f.read(key);
    require(stored.sizes() == t.sizes(), path + ": " + key + " has shape " +
                                             c10::str(stored.sizes()) + ", expected " +
                                             c10::str(t.sizes()) + " for architecture " + *arch);
    t.copy_(stored);
  }
  const auto stored_sum = f.attr_string("/", "checksum");
  require(stored_sum.has_value() && *stored_sum == ev.checksum(),
          path + ": evaluator checksum " + stored_sum.value_or("(missing)") +
              " does not match its weights (" + ev.checksum() +
              "); the file was modified or damaged");
  ev.m_net->eval();
  return ev;
}

std::string Evaluator::input_shape() const {
  return shape_text(m_config.channels, m_config.image_size, m_config.image_size);
}

void Evaluator::check_image_shape(std::int64_t c, std::int64_t h, std::int64_t w,
                                  const std::string& what) const {
  const auto s = m_config.image_size;
  if (c != m_config.channels || h != s || w != s)
    throw Error(what + ": images are " + shape_text(c, h, w) + " but the evaluator " +
                (m_path.empty() ? std::string() : m_path + " ") + "expects " +
                shape_text(m_config.channels, s, s) +
                " (train an evaluator on data of this shape with `fedgan evaluator`)");
}

torch::Tensor Evaluator::embed(const torch::Tensor& images) {
  return m_net->features(images.to(m_net->conv1->weight.device(), torch::kFloat32));
}

torch::Tensor Evaluator::features(const torch::Tensor& images, const std::string& what, int batch) {
  require(images.dim() == 4, what + ": expected images [N,C,H,W], got " + c10::str(images.sizes()));
  require(batch >= 1, what + ": the batch size must be positive, got " + std::to_string(batch));
  check_image_shape(images.size(1), images.size(2), images.size(3), what);
  torch::NoGradGuard no_grad;
  const bool was_training = m_net->is_training();
  m_net->eval();
  std::vector<torch::Tensor> out;
  for (std::int64_t begin = 0; begin < images.size(0); begin += batch) {
    const auto len = std::min<std::int64_t>(batch, images.size(0) - begin);
    out.push_back(embed(images.narrow(0, begin, len)));
  }
  m_net->train(was_training);
  if (out.empty())
    return torch::zeros({0, m_config.feature_dim}, images.options().dtype(torch::kFloat32));
  return torch::cat(out);
}

}  // namespace fedgan::eval
