// Spectral normalisation (see include/fedgan/models/spectral_norm.hpp).
#include "fedgan/models/spectral_norm.hpp"

namespace fedgan::models {
namespace {

namespace F = torch::nn::functional;

torch::Tensor sn_unit(const torch::Tensor& v) {
  return F::normalize(v, F::NormalizeFuncOptions().dim(0).eps(1e-12));
}

// A fresh power-iteration vector: a random unit vector (torch's global generator, like weights).
torch::Tensor sn_initial_u(int out) { return sn_unit(torch::randn({out})); }

}  // namespace

torch::Tensor spectral_sigma(const torch::Tensor& weight, torch::Tensor& u, bool update) {
  const auto w = weight.reshape({weight.size(0), -1});
  torch::Tensor u_now, v_now;
  {
    torch::NoGradGuard no_grad;
    const auto wd = w.detach();
    v_now = sn_unit(torch::mv(wd.t(), u));
    if (update) {
      // In place: u aliases the model's flat buffer.
      u.copy_(sn_unit(torch::mv(wd, v_now)));
      v_now = sn_unit(torch::mv(wd.t(), u));
    }
    u_now = u.clone();  // the graph must not see later in-place updates of u
  }
  return torch::dot(u_now, torch::mv(w, v_now));
}

SpectralConv2dImpl::SpectralConv2dImpl(int in, int out, int kernel, int stride_, int padding_)
    : stride(stride_), padding(padding_) {
  weight = register_parameter("weight", torch::randn({out, in, kernel, kernel}) * 0.02);
  bias = register_parameter("bias", torch::zeros({out}));
  u = register_buffer("u", sn_initial_u(out));
}

torch::Tensor SpectralConv2dImpl::forward(const torch::Tensor& x) {
  const auto sigma = spectral_sigma(weight, u, is_training());
  return F::conv2d(x, weight / sigma,
                   F::Conv2dFuncOptions().bias(bias).stride(stride).padding(padding));
}

SpectralLinearImpl::SpectralLinearImpl(int in, int out) {
  weight = register_parameter("weight", torch::randn({out, in}) * 0.02);
  bias = register_parameter("bias", torch::zeros({out}));
  u = register_buffer("u", sn_initial_u(out));
}

torch::Tensor SpectralLinearImpl::forward(const torch::Tensor& x) {
  const auto sigma = spectral_sigma(weight, u, is_training());
  return F::linear(x, weight / sigma, bias);
}

}  // namespace fedgan::models
