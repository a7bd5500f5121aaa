// FlatParameters: views alias one buffer; training through them equals ordinary training.
#include <catch2/catch.hpp>

#include "fedgan/models/flat_parameters.hpp"

using namespace fedgan;

namespace {

struct NetImpl : torch::nn::Module {
  NetImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3)));
    bn = register_module("bn", torch::nn::BatchNorm2d(4));
    fc = register_module("fc", torch::nn::Linear(4 * 6 * 6, 3));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(bn(conv(x)));
    return fc(x.flatten(1));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(Net);

Net make_net(int seed) {
  torch::manual_seed(seed);
  return Net();
}

void train_steps(Net& net, int steps) {
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-2));
  torch::manual_seed(99);
  for (int i = 0; i < steps; ++i) {
    auto x = torch::randn({5, 1, 8, 8});
    auto y = torch::randint(0, 3, {5}, torch::kLong);
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
    loss.backward();
    opt.step();
  }
}

}  // namespace

TEST_CASE("flat parameters alias one contiguous buffer", "[flat]") {
  Net net = make_net(1);
  const auto before = net->fc->weight.detach().clone();
  models::FlatParameters flat(*net);
  REQUIRE(flat.aliases(*net));
  CHECK(torch::equal(net->fc->weight, before));  // values kept

  std::int64_t expected = 0;
  for (auto& p : net->parameters()) expected += p.numel();
  CHECK(flat.parameter_numel() == expected);
  // BatchNorm's running mean and var join (num_batches_tracked is int64 and stays out).
  CHECK(flat.numel() == expected + 8);
  CHECK(flat.entries().back().is_buffer);

  // Writing the buffer changes the module, and the other way round.
  flat.flat().fill_(0.5f);
  CHECK(net->conv->weight.min().item<float>() == 0.5f);
  CHECK(net->bn->running_var.max().item<float>() == 0.5f);
  {
    torch::NoGradGuard g;
    net->fc->bias.fill_(-2.0f);
  }
  const auto& last_param = flat.entries()[flat.entries().size() - 3];
  CHECK(last_param.name == "fc.bias");
  CHECK(flat.flat().narrow(0, last_param.offset, last_param.numel).eq(-2.0f).all().item<bool>());
}

TEST_CASE("training through flat views equals training an ordinary module", "[flat]") {
  Net plain = make_net(3);
  Net flat_net = make_net(3);
  models::FlatParameters flat(*flat_net);
  train_steps(plain, 5);
  train_steps(flat_net, 5);
  REQUIRE(flat.aliases(*flat_net));
  auto a = plain->named_parameters();
  auto b = flat_net->named_parameters();
  for (const auto& item : a) CHECK(torch::equal(item.value(), b[item.key()]));
  CHECK(torch::equal(plain->bn->running_mean, flat_net->bn->running_mean));
}

TEST_CASE("optimizer made before flattening still trains the flat buffer", "[flat]") {
  Net net = make_net(4);
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.1));
  models::FlatParameters flat(*net);
  const auto before = flat.snapshot();
  auto loss = net->forward(torch::randn({2, 1, 8, 8})).sum();
  loss.backward();
  opt.step();
  CHECK_FALSE(torch::equal(before, flat.flat()));
  CHECK(flat.aliases(*net));
}

TEST_CASE("snapshot and restore round-trip", "[flat]") {
  Net net = make_net(5);
  models::FlatParameters flat(*net);
  const auto saved = flat.snapshot();
  train_steps(net, 2);
  CHECK_FALSE(torch::equal(saved, flat.flat()));
  flat.restore(saved);
  CHECK(torch::equal(saved, flat.flat()));
  CHECK(flat.aliases(*net));
  CHECK_THROWS(flat.restore(torch::zeros({3})));
}
