// Spectrally normalised convolution and linear layers (Miyato et al. 2018): the layer uses
// W / σ(W), with σ(W) estimated by one power iteration per training-mode forward. The raw weight
// is the parameter `weight` (as an ordinary layer names it, so warm starts by name still match);
// the power-iteration vector is the float buffer `u` [out]. Being a buffer, `u` lives in the
// model's flat buffer beside BatchNorm statistics: checkpoints store it, the federation averages
// it like other buffers (every party starts a round from the same u and moves it one iteration
// per forward, so the mean stays close to the top singular vector; the next iteration
// renormalises it), and frozen blocks leave it out of the allreduce with their weights.
#pragma once

#include <torch/torch.h>

namespace fedgan::models {

// σ(W) from one step of power iteration on W viewed as [out, rest]. In training mode (update)
// u ← normalize(W normalize(Wᵀu)) in place (no gradient); σ = uᵀ W v is differentiable in W
// with u and v held constant (as torch.nn.utils.spectral_norm does).
torch::Tensor spectral_sigma(const torch::Tensor& weight, torch::Tensor& u, bool update);

struct SpectralConv2dImpl : torch::nn::Module {
  SpectralConv2dImpl(int in, int out, int kernel, int stride, int padding);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias, u;
  int stride, padding;
};
TORCH_MODULE(SpectralConv2d);

struct SpectralLinearImpl : torch::nn::Module {
  SpectralLinearImpl(int in, int out);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias, u;
};
TORCH_MODULE(SpectralLinear);

}  // namespace fedgan::models
