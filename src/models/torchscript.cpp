// TorchScript user models (see include/fedgan/models/torchscript.hpp). Registered as family
// "torchscript".
#include "fedgan/models/torchscript.hpp"

#include <torch/csrc/jit/runtime/graph_executor.h>

#include <set>
#include <sstream>

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"

namespace fedgan::models {
namespace {

// The first line of a LibTorch message (its backtrace and source excerpts say nothing to a user).
std::string first_line(const std::exception& e) {
  std::string text = error_message(e);
  const auto nl = text.find('\n');
  return nl == std::string::npos ? text : text.substr(0, nl);
}

std::string shape_text(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

// Number of inputs of forward, not counting self.
std::size_t forward_arity(const torch::jit::Module& m) {
  const auto method = m.find_method("forward");
  if (!method) return 0;
  return method->function().getSchema().arguments().size() - 1;
}

// An int attribute (or a Final[int] constant) of the top-level module.
std::optional<int> int_attribute(const torch::jit::Module& m, const std::string& name) {
  const auto type = m.type();
  c10::IValue value;
  if (type->hasAttribute(name))
    value = m.attr(name);
  else if (type->hasConstant(name))
    value = type->getConstant(name);
  else
    return std::nullopt;
  if (!value.isInt()) return std::nullopt;
  return static_cast<int>(value.toInt());
}

// The mirror: every parameter and buffer of `from`, registered under the same name in a tree of
// plain torch::nn::Modules. The tensors are shared (the same TensorImpl), so re-seating them on a
// flat buffer (FlatParameters) or moving them (.to) changes what the TorchScript graph reads.
// Every parameter is trained, as in a built-in model (requires_grad saved in the archive is not
// followed): fedgan's --freeze-g/--freeze-d/--train-only say what stays fixed.
void mirror(torch::nn::Module& into, const torch::jit::Module& from) {
  for (const auto& p : from.named_parameters(/*recurse=*/false))
    into.register_parameter(p.name, p.value, /*requires_grad=*/true);
  for (const auto& b : from.named_buffers(/*recurse=*/false)) into.register_buffer(b.name, b.value);
  for (const auto& c : from.named_children()) {
    auto child = std::make_shared<torch::nn::Module>(c.name);
    mirror(*child, c.value);
    into.register_module(c.name, child);
  }
}

bool has_parameters(const torch::jit::Module& m) {
  for (const auto& p : m.named_parameters(/*recurse=*/true)) {
    (void)p;
    return true;
  }
  return false;
}

// Block name prefixes, input first: the fedgan_blocks attribute when the module has one; else the
// top-level children that hold parameters (descending into a lone container such as "main").
std::vector<std::string> blocks_of(const torch::jit::Module& m, const std::string& what) {
  std::vector<std::string> out;
  if (m.type()->hasAttribute("fedgan_blocks")) {
    const auto value = m.attr("fedgan_blocks");
    if (!value.isList())
      throw Error(what + ": attribute fedgan_blocks must be a List[str] of block name prefixes");
    for (const auto& item : value.toListRef()) {
      if (!item.isString())
        throw Error(what + ": attribute fedgan_blocks must be a List[str] of block name prefixes");
      out.push_back(item.toStringRef());
    }
    return out;
  }
  std::vector<std::pair<std::string, torch::jit::Module>> children;
  for (const auto& c : m.named_children())
    if (has_parameters(c.value)) children.emplace_back(c.name, c.value);
  if (children.size() == 1) {
    for (const auto& c : children.front().second.named_children())
      if (has_parameters(c.value)) out.push_back(children.front().first + "." + c.name);
    if (!out.empty()) return out;
  }
  for (const auto& c : children) out.push_back(c.first);
  return out;
}

// What G and D share: the module and its mirror, the blocks, train/eval, and the call of
// forward with the labels when the model is conditional.
template <class Base>
class Scripted : public Base {
 public:
  Scripted(torch::jit::Module module, std::string what)
      : m_module(std::move(module)),
        m_what(std::move(what)),
        m_conditional(forward_arity(m_module) == 2) {
    mirror(*this, m_module);
    m_blocks = blocks_of(m_module, m_what);
  }

  std::vector<std::string> block_prefixes() const override { return m_blocks; }

  void train(bool on) override {
    torch::nn::Module::train(on);
    m_module.train(on);
  }

  torch::jit::Module& script() { return m_module; }

 protected:
  torch::Tensor call_forward(const torch::Tensor& input, const torch::Tensor& labels) {
    std::vector<c10::IValue> inputs{input};
    if (m_conditional) {
      require(labels.defined(), m_what + ": this model is conditional and needs labels");
      inputs.emplace_back(labels);
    }
    return m_module.forward(std::move(inputs)).toTensor();
  }

  torch::jit::Module m_module;
  std::string m_what;

 private:
  bool m_conditional;
  std::vector<std::string> m_blocks;
};

class ScriptedGenerator final : public Scripted<Generator> {
 public:
  using Scripted::Scripted;
  torch::Tensor forward(const torch::Tensor& z, const torch::Tensor& labels) override {
    return call_forward(z, labels);
  }
};

class ScriptedDiscriminator final : public Scripted<Discriminator> {
 public:
  ScriptedDiscriminator(torch::jit::Module module, std::string what)
      : Scripted(std::move(module), std::move(what)),
        m_features(m_module.find_method("features").has_value()) {}

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& labels) override {
    auto out = call_forward(x, labels);
    if (out.dim() == 2 && out.size(1) == 1) out = out.squeeze(1);
    if (out.dim() != 1 || out.size(0) != x.size(0))
      throw Error(m_what + ": D(x) returned " + shape_text(out) + " for a batch of " +
                  std::to_string(x.size(0)) + "; the interface needs one logit per image, [B]");
    return out;
  }

  torch::Tensor features(const torch::Tensor& x) override {
    if (!m_features)
      throw Error(m_what +
                  ": the discriminator has no features(x) method (add one with "
                  "@torch.jit.export returning [B, F]); feature matching needs it");
    return m_module.get_method("features")({x}).toTensor();
  }

 private:
  bool m_features;
};

const ScriptArchives& archives_of(const ModelConfig& c) {
  if (!c.scripts)
    throw Error("model: family torchscript needs its archives (--generator G.pt --discriminator "
                "D.pt, or a checkpoint that holds them)");
  return *c.scripts;
}

void add_shapes(TensorShapes& out, const torch::jit::Module& m) {
  for (const auto& p : m.named_parameters(/*recurse=*/true)) out[p.name] = p.value.sizes().vec();
  for (const auto& b : m.named_buffers(/*recurse=*/true))
    if (b.value.is_floating_point()) out[b.name] = b.value.sizes().vec();
}

// Parameters + floating buffers: the values the model puts in its flat buffers.
std::int64_t value_count(const torch::jit::Module& m) {
  TensorShapes shapes;
  add_shapes(shapes, m);
  std::int64_t n = 0;
  for (const auto& [name, shape] : shapes) n += c10::multiply_integers(shape);
  return n;
}

const bool kScriptRegistered = [] {
  ModelRegistry::instance().add(
      kTorchScriptFamily,
      [](const ModelConfig& c) {
        c.validate();
        const auto& a = archives_of(c);
        ModelPair pair;
        pair.generator =
            std::make_shared<ScriptedGenerator>(load_script(a.generator, "the generator"),
                                                "the generator");
        pair.discriminator = std::make_shared<ScriptedDiscriminator>(
            load_script(a.discriminator, "the discriminator"), "the discriminator");
        return pair;
      },
      [](const ModelConfig& c) {
        c.validate();
        const auto& a = archives_of(c);
        ModelShapes out;
        add_shapes(out.generator, load_script(a.generator, "the generator"));
        add_shapes(out.discriminator, load_script(a.discriminator, "the discriminator"));
        return out;
      });
  return true;
}();

}  // namespace

bool torchscript_registered() { return kScriptRegistered; }

torch::jit::Module load_script(const std::string& bytes, const std::string& what) {
  // The graph runs op by op, with eager autograd: the arithmetic is the built-in models' (a
  // scripted DCGAN trains to the same numbers), with no profiling runs or fused kernels whose
  // results could differ between the first rounds and later ones.
  torch::jit::setGraphExecutorOptimize(false);
  torch::jit::Module m;
  try {
    std::istringstream in(bytes);
    m = torch::jit::load(in, torch::Device(torch::kCPU));
  } catch (const std::exception& e) {
    throw Error(what + ": not a TorchScript archive (torch.jit.load: " + first_line(e) +
                "); save the model with torch.jit.script(model).save(path)");
  }
  const auto arity = forward_arity(m);
  if (arity != 1 && arity != 2)
    throw Error(what + ": forward takes " + std::to_string(arity) +
                " inputs; the interface is forward(input) or forward(input, y) (y: int64 labels)");
  std::set<const void*> seen;
  for (const auto& p : m.named_parameters(/*recurse=*/true)) {
    if (p.value.scalar_type() != torch::kFloat32)
      throw Error(what + ": parameter " + p.name + " is " + c10::toString(p.value.scalar_type()) +
                  "; fedgan trains float32 models (call .float() before scripting)");
    if (!seen.insert(p.value.unsafeGetTensorImpl()).second)
      throw Error(what + ": parameter " + p.name +
                  " is shared with another parameter (tied weights are not supported)");
  }
  for (const auto& b : m.named_buffers(/*recurse=*/true)) {
    const auto type = b.value.scalar_type();
    if (b.value.is_floating_point() && type != torch::kFloat32)
      throw Error(what + ": buffer " + b.name + " is " + c10::toString(type) +
                  "; floating buffers must be float32");
    if (!seen.insert(b.value.unsafeGetTensorImpl()).second)
      throw Error(what + ": buffer " + b.name + " is shared with another tensor of the model");
  }
  if (seen.empty()) throw Error(what + ": the module has no parameters");
  return m;
}

ScriptPair load_scripts(const ScriptArchives& archives, const std::string& g_what,
                        const std::string& d_what) {
  return {load_script(archives.generator, g_what), load_script(archives.discriminator, d_what),
          g_what, d_what};
}

ScriptInfo inspect_scripts(const ScriptPair& scripts) {
  const auto& g = scripts.generator;
  const auto& d = scripts.discriminator;
  ScriptInfo info;
  info.conditional = forward_arity(g) == 2;
  if (info.conditional != (forward_arity(d) == 2))
    throw Error(scripts.g_what + " and " + scripts.d_what +
                ": one is conditional (forward(input, y)) and the other is not; G and D must "
                "agree");
  info.latent_dim = int_attribute(g, "latent_dim");
  info.num_classes = int_attribute(g, "num_classes");
  info.g_values = value_count(g);
  info.d_values = value_count(d);
  (void)blocks_of(g, scripts.g_what);  // a malformed fedgan_blocks is named now, not in round 1
  (void)blocks_of(d, scripts.d_what);
  return info;
}

void check_script_interface(ScriptPair& scripts, const ModelConfig& config) {
  auto& g = scripts.generator;
  auto& d = scripts.discriminator;
  const auto& g_what = scripts.g_what;
  const auto& d_what = scripts.d_what;
  g.eval();
  d.eval();
  torch::NoGradGuard no_grad;
  constexpr std::int64_t kBatch = 2;
  auto gen = compat::make_cpu_generator(0);
  const auto z = torch::randn({kBatch, config.latent_dim}, gen);
  const bool conditional = config.num_classes > 0;
  const auto y = conditional ? torch::arange(kBatch, torch::kInt64) % config.num_classes
                             : torch::Tensor();
  auto call = [&](torch::jit::Module& m, const torch::Tensor& input, const std::string& what,
                  const std::string& form) {
    std::vector<c10::IValue> inputs{input};
    if (conditional) inputs.emplace_back(y);
    c10::IValue out;
    try {
      out = m.forward(std::move(inputs));
    } catch (const std::exception& e) {
      throw Error(what + ": " + form + " fails on a batch of " + std::to_string(kBatch) + " " +
                  shape_text(input) + ": " + first_line(e));
    }
    if (!out.isTensor())
      throw Error(what + ": " + form + " returns " + out.tagKind() + ", not a tensor");
    return out.toTensor();
  };
  const std::string g_form = conditional ? "G(z, y)" : "G(z)";
  const auto x = call(g, z, g_what, g_form);
  const std::vector<std::int64_t> want{kBatch, config.channels, config.image_size,
                                       config.image_size};
  if (x.sizes().vec() != want)
    throw Error(g_what + ": " + g_form + " returns " + shape_text(x) + " for z of " +
                shape_text(z) + "; the data needs images " + c10::str(c10::IntArrayRef(want)) +
                " (channels and size of the dataset)");
  if (x.scalar_type() != torch::kFloat32)
    throw Error(g_what + ": " + g_form + " returns " + c10::toString(x.scalar_type()) +
                " images; float32 expected");
  if (!torch::isfinite(x).all().item<bool>())
    throw Error(g_what + ": " + g_form + " returns NaN or inf");
  const double lo = x.min().item<double>(), hi = x.max().item<double>();
  if (lo < -1.0 - 1e-5 || hi > 1.0 + 1e-5)
    throw Error(g_what + ": " + g_form + " returns values in [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "]; images must lie in [-1, 1] (end G with tanh)");
  const std::string d_form = conditional ? "D(x, y)" : "D(x)";
  auto logits = call(d, x, d_what, d_form);
  if (logits.dim() == 2 && logits.size(1) == 1) logits = logits.squeeze(1);
  if (logits.dim() != 1 || logits.size(0) != kBatch)
    throw Error(d_what + ": " + d_form + " returns " + shape_text(logits) + " for images " +
                shape_text(x) + "; the interface needs one logit per image, [" +
                std::to_string(kBatch) + "]");
  if (!torch::isfinite(logits).all().item<bool>())
    throw Error(d_what + ": " + d_form + " returns NaN or inf");
}

std::shared_ptr<Discriminator> make_script_discriminator(const std::string& bytes,
                                                         const std::string& what) {
  return std::make_shared<ScriptedDiscriminator>(load_script(bytes, what), what);
}

torch::jit::Module* script_module(torch::nn::Module& model) {
  if (auto* g = dynamic_cast<Scripted<Generator>*>(&model)) return &g->script();
  if (auto* d = dynamic_cast<Scripted<Discriminator>*>(&model)) return &d->script();
  return nullptr;
}

}  // namespace fedgan::models
