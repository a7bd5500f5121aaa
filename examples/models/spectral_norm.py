"""Spectral normalisation (Miyato et al. 2018, "Spectral Normalization for GANs") as plain,
scriptable modules: torch.nn.utils.spectral_norm works through forward pre-hooks, which
TorchScript cannot script. Mirrors fedgan's C++ SpectralConv2d / SpectralLinear
(src/models/spectral_norm.cpp): the raw weight is the parameter `weight`, the power-iteration
vector is the float buffer `u` [out], and each training-mode forward does one power iteration.
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _unit(v: Tensor) -> Tensor:
    return F.normalize(v, dim=0, eps=1e-12)


def spectral_sigma(weight: Tensor, u: Tensor, update: bool) -> Tensor:
    """sigma(W) = u^T W v from one power-iteration step on W viewed as [out, rest].

    With update (training mode) u <- normalize(W normalize(W^T u)) in place, outside autograd;
    sigma is differentiable in W with u and v held constant, as in torch.nn.utils.spectral_norm.
    The same steps in the same order as fedgan's C++ spectral_sigma.
    """
    w = weight.reshape(weight.size(0), -1)
    wd = w.detach()
    v = _unit(torch.mv(wd.t(), u))
    if update:
        u.copy_(_unit(torch.mv(wd, v)))
        v = _unit(torch.mv(wd.t(), u))
    # The graph must not see later in-place updates of u.
    u_now = u.clone()
    return torch.dot(u_now, torch.mv(w, v))


class SpectralConv2d(nn.Module):
    """conv2d with W / sigma(W); the C++ SpectralConv2d (weight, bias, u; same draws)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.stride = stride
        self.padding = padding
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) * 0.02)
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("u", _unit(torch.randn(cout)))

    def forward(self, x: Tensor) -> Tensor:
        sigma = spectral_sigma(self.weight, self.u, self.training)
        return F.conv2d(x, self.weight / sigma, self.bias, self.stride, self.padding)


class SpectralLinear(nn.Module):
    """linear with W / sigma(W); the C++ SpectralLinear."""

    def __init__(self, cin: int, cout: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) * 0.02)
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.register_buffer("u", _unit(torch.randn(cout)))

    def forward(self, x: Tensor) -> Tensor:
        sigma = spectral_sigma(self.weight, self.u, self.training)
        return F.linear(x, self.weight / sigma, self.bias)


class SpectralEmbedding(nn.Module):
    """Embedding table W [num, dim] used as W / sigma(W) (the SN embedding of the projection
    discriminator, Miyato & Koyama 2018); u has one entry per class."""

    def __init__(self, num: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num, dim) * 0.02)
        self.register_buffer("u", _unit(torch.randn(num)))

    def forward(self, y: Tensor) -> Tensor:
        sigma = spectral_sigma(self.weight, self.u, self.training)
        return F.embedding(y, self.weight / sigma)
