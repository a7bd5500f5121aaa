"""fedgan's built-in `dcgan` family (src/models/dcgan.cpp) in PyTorch: DCGAN (Radford et al. 2016)
G and D for 28, 32, 64 and 128 pixel images, optionally conditional (label embedding
concatenated to z in G, projection in D, Miyato & Koyama 2018), D normalised by BatchNorm,
nothing or spectral norm. Module names, registration order, initialisation and forward
arithmetic follow the C++ classes, so named_parameters() and named_buffers() list the same
names and shapes in the same order, and the same torch seed draws the same initial weights.
Scriptable with torch.jit.script.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spectral_norm import SpectralConv2d, SpectralLinear

EMBED_DIM = 32  # kEmbedDim: the label embedding concatenated to z


def geometry(image_size: int) -> Tuple[int, int]:
    """(spatial size of G's first block / D's last block, stride-2 steps to the image)."""
    table = {28: (7, 2), 32: (4, 3), 64: (4, 4), 128: (4, 5)}
    if image_size not in table:
        raise ValueError(f"dcgan: image size {image_size} is not supported (28, 32, 64 or 128)")
    return table[image_size]


@torch.no_grad()
def dcgan_init(module: nn.Module) -> None:
    """The C++ dcgan_init, parameter by parameter in named_parameters() order: biases 0,
    BatchNorm weights N(1, 0.02), every other weight N(0, 0.02). Buffers keep their values."""
    for name, p in module.named_parameters():
        if name.endswith("bias"):
            p.zero_()
        elif ".bn." in name:
            p.normal_(1.0, 0.02)
        else:
            p.normal_(0.0, 0.02)


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, pad: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, kernel, stride=stride, padding=pad, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class DownBlock(nn.Module):
    """A stride-2 4x4 convolution with BatchNorm (no bias), or with a bias and nothing else, or
    spectrally normalised with a bias; registered as "conv" in every case, as in C++."""

    def __init__(self, cin: int, cout: int, norm: bool, spectral: bool):
        super().__init__()
        if spectral:
            self.conv = SpectralConv2d(cin, cout, 4, 2, 1)
        else:
            self.conv = nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=not norm)
        self.bn = nn.BatchNorm2d(cout) if norm and not spectral else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(x)
        if self.bn is not None:
            h = self.bn(h)
        return F.leaky_relu(h, 0.2)


class Generator(nn.Module):
    """Unconditional G: forward(z [B, latent_dim]) -> images [B, C, S, S] in [-1, 1]."""

    fedgan_blocks: List[str]

    def __init__(self, channels: int = 1, image_size: int = 28, latent_dim: int = 64,
                 g_width: int = 64, num_classes: int = 0):
        super().__init__()
        s0, steps = geometry(image_size)
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        cin = latent_dim
        self.embed = None
        if num_classes > 0:
            self.embed = nn.Embedding(num_classes, EMBED_DIM)
            cin += EMBED_DIM
        # Widths halve towards the image: g_width * 2^(steps-1), ..., g_width.
        width = g_width << (steps - 1)
        blocks = [UpBlock(cin, width, s0, 1, 0)]
        for _ in range(1, steps):
            blocks.append(UpBlock(width, width // 2, 4, 2, 1))
            width //= 2
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1)
        self.fedgan_blocks = [f"blocks.{i}" for i in range(steps)] + ["out"]
        dcgan_init(self)

    def generate(self, z: Tensor, y: Optional[Tensor]) -> Tensor:
        h = z
        if self.embed is not None:
            assert y is not None, "generator: this model is conditional and needs labels"
            h = torch.cat([h, self.embed(y)], 1)
        h = h.view(h.size(0), h.size(1), 1, 1)
        for block in self.blocks:
            h = block(h)
        return torch.tanh(self.out(h))

    def forward(self, z: Tensor) -> Tensor:
        return self.generate(z, None)


class ConditionalGenerator(Generator):
    """Conditional G: forward(z [B, latent_dim], y int64 [B])."""

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.generate(z, y)


class Discriminator(nn.Module):
    """Unconditional D: forward(x [B, C, S, S]) -> one logit per image [B]."""

    fedgan_blocks: List[str]

    def __init__(self, channels: int = 1, image_size: int = 28, d_width: int = 64,
                 num_classes: int = 0, d_norm: str = "batch"):
        super().__init__()
        if d_norm not in ("batch", "none", "spectral"):
            raise ValueError(f"dcgan: d_norm {d_norm!r} (expected batch, none or spectral)")
        s0, steps = geometry(image_size)
        norm, spectral = d_norm == "batch", d_norm == "spectral"
        self.num_classes = num_classes
        width = d_width
        blocks = [DownBlock(channels, width, False, spectral)]
        for _ in range(1, steps):
            blocks.append(DownBlock(width, width * 2, norm, spectral))
            width *= 2
        self.blocks = nn.ModuleList(blocks)
        features = width * s0 * s0
        self.head = SpectralLinear(features, 1) if spectral else nn.Linear(features, 1)
        self.embed = nn.Embedding(num_classes, features) if num_classes > 0 else None
        self.fedgan_blocks = [f"blocks.{i}" for i in range(steps)] + ["head"]
        dcgan_init(self)

    @torch.jit.export
    def features(self, x: Tensor) -> Tensor:
        h = x
        for block in self.blocks:
            h = block(h)
        return h.flatten(1)

    def score(self, x: Tensor, y: Optional[Tensor]) -> Tensor:
        f = self.features(x)
        logit = self.head(f).squeeze(1)
        if self.embed is not None:
            assert y is not None, "discriminator: this model is conditional and needs labels"
            logit = logit + (self.embed(y) * f).sum(1)
        return logit

    def forward(self, x: Tensor) -> Tensor:
        return self.score(x, None)


class ConditionalDiscriminator(Discriminator):
    """Conditional (projection) D: forward(x, y int64 [B]) -> [B]."""

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.score(x, y)


def build(channels: int = 1, image_size: int = 28, latent_dim: int = 64, g_width: int = 64,
          d_width: int = 64, num_classes: int = 0, d_norm: str = "batch"
          ) -> Tuple[Generator, Discriminator]:
    """G then D, as fedgan's Gan builds them (seed torch first for the same weights as
    `fedgan train --seed N`): the conditional classes when num_classes > 0."""
    g_cls = ConditionalGenerator if num_classes > 0 else Generator
    d_cls = ConditionalDiscriminator if num_classes > 0 else Discriminator
    g = g_cls(channels, image_size, latent_dim, g_width, num_classes)
    d = d_cls(channels, image_size, d_width, num_classes, d_norm)
    return g, d
