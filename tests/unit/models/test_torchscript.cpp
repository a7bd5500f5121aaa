// TorchScript user models: the interface check names what does not fit, the model's tensors are
// the flat buffers', and checkpoints carry the archives.
#include <catch2/catch.hpp>

#include "fedgan/core/error.hpp"
#include "fedgan/io/checkpoint.hpp"
#include "fedgan/io/hdf5.hpp"
#include "fedgan/models/gan.hpp"
#include "fedgan/models/torchscript.hpp"
#include "temp_dir.hpp"

#include <sstream>

using fedgan::Error;
using namespace fedgan::models;

namespace {

// An archive holding parameters `params` (name -> value), optional int attributes and the given
// TorchScript source (its methods), as torch.jit.script(...).save would write it.
std::string archive(const std::vector<std::pair<std::string, torch::Tensor>>& params,
                    const std::string& source,
                    const std::vector<std::pair<std::string, int>>& ints = {}) {
  torch::jit::Module m("M");
  m.register_attribute("training", c10::BoolType::get(), true);  // as torch.jit.script makes it
  for (const auto& [name, value] : params) m.register_parameter(name, value, false);
  for (const auto& [name, value] : ints) m.register_attribute(name, c10::IntType::get(), value);
  m.define(source);
  std::ostringstream out;
  m.save(out);
  return out.str();
}

constexpr int kZ = 4;

// G: z [B, 4] -> tanh(z W) as [B, 3, 2, 2]; D: x -> [B] logits. `g_source` replaces G's forward.
ScriptArchives pair(const std::string& g_source = "def forward(self, z):\n"
                                                  "    return torch.tanh(torch.mm(z, self.w))"
                                                  ".view(z.size(0), 3, 2, 2)\n",
                    const std::string& d_source = "def forward(self, x):\n"
                                                  "    return torch.mm(x.flatten(1), self.v)"
                                                  ".squeeze(1)\n",
                    torch::Tensor w = torch::Tensor()) {
  torch::manual_seed(1);
  if (!w.defined()) w = torch::randn({kZ, 12}) * 0.1;
  ScriptArchives a;
  a.generator = archive({{"w", w}}, g_source, {{"latent_dim", kZ}});
  a.discriminator = archive({{"v", torch::randn({12, 1})}}, d_source);
  return a;
}

ModelConfig config_of(ScriptArchives a, int classes = 0) {
  ModelConfig c;
  c.family = kTorchScriptFamily;
  c.channels = 3;
  c.image_size = 2;
  c.latent_dim = kZ;
  c.num_classes = classes;
  c.set_scripts(std::move(a));
  return c;
}

std::string check_error(const ModelConfig& c) {
  try {
    auto scripts = load_scripts(*c.scripts, "G.pt", "D.pt");
    check_script_interface(scripts, c);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("torchscript: a fitting pair passes the dry forward and trains through flat buffers") {
  const auto c = config_of(pair());
  CHECK(check_error(c).empty());
  const auto info = inspect_scripts(load_scripts(*c.scripts, "G.pt", "D.pt"));
  CHECK_FALSE(info.conditional);
  REQUIRE(info.latent_dim);
  CHECK(*info.latent_dim == kZ);
  CHECK(info.g_values == kZ * 12);

  Gan gan(c);
  REQUIRE(gan.g_flat().numel() == kZ * 12);
  CHECK(gan.g_flat().entries().front().name == "w");
  CHECK(gan.g_flat().aliases(gan.generator()));
  // The graph reads the flat buffer: changing it changes G's output.
  const auto z = torch::ones({2, kZ});
  const auto before = gan.generator().forward(z, {}).clone();
  gan.g_flat().flat().add_(0.5);
  CHECK_FALSE(torch::equal(before, gan.generator().forward(z, {})));
  // Gradients land in the flat gradient buffer.
  gan.d_grad().zero_();
  gan.discriminator().forward(gan.generator().forward(z, {}).detach(), {}).sum().backward();
  CHECK(gan.d_grad().abs().sum().item<double>() > 0);
  // train/eval reach the TorchScript module.
  gan.train(false);
  CHECK_FALSE(script_module(gan.generator())->is_training());
  gan.train(true);
  CHECK(script_module(gan.discriminator())->is_training());
}

TEST_CASE("torchscript: the architecture string carries the archives' id") {
  const auto c = config_of(pair());
  const auto text = c.to_string();
  CHECK(text == "torchscript c=3 s=2 z=4 k=0 id=" + c.script_id);
  const auto parsed = ModelConfig::parse(text);
  CHECK(parsed.is_torchscript());
  CHECK(parsed.script_id == c.script_id);
  CHECK(parsed.scripts == nullptr);
  CHECK_THROWS_WITH(ModelConfig::parse("torchscript c=3 s=2 z=4 k=0"),
                    Catch::Contains("'id=' is missing"));
  CHECK_THROWS_WITH(ModelConfig::parse("torchscript c=3 s=2 z=4 k=0 id=xyz"),
                    Catch::Contains("16 hex digits"));
  CHECK_THROWS_WITH(ModelConfig::parse("dcgan c=1 s=28 z=64 gw=64 dw=64 k=0 dn=batch id=0"),
                    Catch::Contains("not a key of family dcgan"));
  // Another archive is another model.
  auto other = pair();
  other.generator += " ";
  CHECK(other.id() != c.script_id);
}

TEST_CASE("torchscript: the dry forward names what does not fit") {
  SECTION("wrong output shape") {
    const auto e = check_error(config_of(
        pair("def forward(self, z):\n    return torch.tanh(torch.mm(z, self.w))\n")));
    CHECK_THAT(e, Catch::Contains("G.pt: G(z) returns [2, 12]") &&
                      Catch::Contains("[2, 3, 2, 2]"));
  }
  SECTION("images outside [-1, 1]") {
    const auto e = check_error(config_of(pair(
        "def forward(self, z):\n    return torch.mm(z, self.w).view(z.size(0), 3, 2, 2)\n",
        "def forward(self, x):\n    return torch.mm(x.flatten(1), self.v).squeeze(1)\n",
        torch::full({kZ, 12}, 3.0))));
    CHECK_THAT(e, Catch::Contains("must lie in [-1, 1]") && Catch::Contains("tanh"));
  }
  SECTION("D returns more than one logit per image") {
    const auto e = check_error(config_of(
        pair("def forward(self, z):\n    return torch.tanh(torch.mm(z, self.w))"
             ".view(z.size(0), 3, 2, 2)\n",
             "def forward(self, x):\n    return torch.mm(x.flatten(1), self.v).repeat(1, 2)\n")));
    CHECK_THAT(e, Catch::Contains("D.pt: D(x) returns [2, 2]") &&
                      Catch::Contains("one logit per image"));
  }
  SECTION("a forward that fails is named with the batch") {
    const auto e = check_error(config_of(
        pair("def forward(self, z):\n    return torch.tanh(torch.mm(z.t(), self.w))"
             ".view(z.size(0), 3, 2, 2)\n")));
    CHECK_THAT(e, Catch::Contains("G.pt: G(z) fails on a batch of 2 [2, 4]"));
  }
  SECTION("the data's image size differs from G's") {
    auto c = config_of(pair());
    c.image_size = 4;
    CHECK_THAT(check_error(c), Catch::Contains("[2, 3, 4, 4]"));
  }
}

TEST_CASE("torchscript: archives that are not usable are refused with the reason") {
  CHECK_THROWS_WITH(load_script("not a zip archive", "G.pt (--generator)"),
                    Catch::Contains("G.pt (--generator): not a TorchScript archive"));
  CHECK_THROWS_WITH(load_script("", "G.pt"), Catch::Contains("not a TorchScript archive"));
  const auto f64 = archive({{"w", torch::zeros({2}, torch::kFloat64)}},
                           "def forward(self, z):\n    return z\n");
  CHECK_THROWS_WITH(load_script(f64, "G.pt"), Catch::Contains("parameter w is Double") &&
                                                  Catch::Contains("float32"));
  const auto three = archive({{"w", torch::zeros({2})}},
                             "def forward(self, z, y, t):\n    return z\n");
  CHECK_THROWS_WITH(load_script(three, "G.pt"), Catch::Contains("forward takes 3 inputs"));
  // G conditional, D not.
  auto mixed = pair("def forward(self, z, y):\n    return torch.tanh(torch.mm(z, self.w))"
                    ".view(z.size(0), 3, 2, 2)\n");
  CHECK_THROWS_WITH(inspect_scripts(load_scripts(mixed, "G.pt", "D.pt")),
                    Catch::Contains("one is conditional"));
  // A Gan without archives.
  ModelConfig bare;
  bare.family = kTorchScriptFamily;
  bare.script_id = "0123456789abcdef";
  CHECK_THROWS_WITH(Gan(bare), Catch::Contains("needs its archives"));
}

TEST_CASE("torchscript: a checkpoint holds the archives and refuses a mismatched id") {
  fedgan::testing::TempDir dir;
  const auto c = config_of(pair());
  Gan gan(c);
  fedgan::io::CheckpointData ck;
  ck.model = c;
  ck.architecture = c.to_string();
  ck.generator = fedgan::io::named_tensors(gan.g_flat());
  ck.discriminator = fedgan::io::named_tensors(gan.d_flat());
  const auto path = dir.file("ck.h5");
  fedgan::io::write_checkpoint(path, ck);
  const auto back = fedgan::io::read_checkpoint(path);
  REQUIRE(back.model.scripts);
  CHECK(back.model.scripts->generator == c.scripts->generator);
  CHECK(back.model.script_id == c.script_id);
  Gan again(back.model);
  fedgan::io::load_strict(again.g_flat(), back.generator, "generator", path);
  CHECK(torch::equal(again.g_flat().flat(), gan.g_flat().flat()));

  // The same file with another model's id in its architecture attribute.
  {
    fedgan::h5::File f(path, fedgan::h5::File::Mode::ReadWrite);
    auto text = ck.architecture;
    text.replace(text.size() - 16, 16, "0123456789abcdef");
    f.set_attr("/", "architecture", text);
  }
  CHECK_THROWS_WITH(fedgan::io::read_checkpoint(path),
                    Catch::Contains("the archives in /scripts have id " + c.script_id));
}
