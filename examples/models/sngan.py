"""A residual SNGAN (Miyato et al. 2018, "Spectral Normalization for GANs") with the ResNet G
and D of Miyato & Koyama 2018, "cGANs with Projection Discriminator" (their chainer code,
gen_models/resnet*.py and dis_models/snresnet*.py), for 32, 64 and 128 pixel images with 1 or 3
channels. Conditional: categorical conditional BatchNorm in G, projection with a spectrally
normalised embedding in D. Follows fedgan's TorchScript model interface (README.md here);
scriptable with torch.jit.script.
"""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spectral_norm import SpectralConv2d, SpectralEmbedding, SpectralLinear

# Per image size: G block widths (multiples of g_width, from the 4x4 input to the last block),
# D block widths (multiples of d_width) and which D blocks halve the resolution. 32 px is the
# CIFAR-10 model (constant width, the last two D blocks keep 8x8; the paper's widths are
# g_width 64, d_width 128); 64 and 128 px the ImageNet ones (g_width 64, d_width 64).
ARCH = {
    32: ([4, 4, 4, 4], [1, 1, 1, 1], [True, True, False, False]),
    64: ([16, 8, 4, 2, 1], [1, 2, 4, 8, 16], [True, True, True, True, False]),
    128: ([16, 16, 8, 4, 2, 1], [1, 2, 4, 8, 16, 16], [True, True, True, True, True, False]),
}


def arch(image_size: int):
    if image_size not in ARCH:
        raise ValueError(f"sngan: image size {image_size} is not supported (32, 64 or 128)")
    return ARCH[image_size]


@torch.no_grad()
def _glorot(weight: Tensor, bias: Optional[Tensor], gain: float) -> None:
    # chainer's GlorotUniform(scale) as the reference code initialises every layer.
    nn.init.xavier_uniform_(weight, gain)
    if bias is not None:
        bias.zero_()


def conv(cin: int, cout: int, kernel: int, spectral: bool, gain: float) -> nn.Module:
    """kernel x kernel convolution, 'same' padding, spectrally normalised or plain."""
    layer = (SpectralConv2d(cin, cout, kernel, 1, kernel // 2) if spectral
             else nn.Conv2d(cin, cout, kernel, padding=kernel // 2))
    _glorot(layer.weight, layer.bias, gain)
    return layer


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm2d; when conditional, without its own affine but with a per-class gain and bias
    (categorical conditional BatchNorm, de Vries et al. 2017, as in Miyato & Koyama's G)."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(c, affine=num_classes == 0)
        self.gamma = None
        self.beta = None
        if num_classes > 0:
            self.gamma = nn.Embedding(num_classes, c)
            self.beta = nn.Embedding(num_classes, c)
            nn.init.ones_(self.gamma.weight)
            nn.init.zeros_(self.beta.weight)

    def forward(self, x: Tensor, y: Optional[Tensor]) -> Tensor:
        h = self.bn(x)
        if self.gamma is not None and self.beta is not None:
            assert y is not None, "generator: this model is conditional and needs labels"
            h = h * self.gamma(y)[:, :, None, None] + self.beta(y)[:, :, None, None]
        return h


class GBlock(nn.Module):
    """BN, ReLU, nearest x2, conv3x3, BN, ReLU, conv3x3; shortcut nearest x2 then conv1x1."""

    def __init__(self, cin: int, cout: int, num_classes: int):
        super().__init__()
        self.b1 = ConditionalBatchNorm2d(cin, num_classes)
        self.c1 = conv(cin, cout, 3, False, math.sqrt(2))
        self.b2 = ConditionalBatchNorm2d(cout, num_classes)
        self.c2 = conv(cout, cout, 3, False, math.sqrt(2))
        self.sc = conv(cin, cout, 1, False, 1.0)

    def forward(self, x: Tensor, y: Optional[Tensor]) -> Tensor:
        h = F.interpolate(F.relu(self.b1(x, y)), scale_factor=2.0, mode="nearest")
        h = self.c2(F.relu(self.b2(self.c1(h), y)))
        return h + self.sc(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class GOutput(nn.Module):
    """BN, ReLU, conv3x3 to the image channels, tanh."""

    def __init__(self, cin: int, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = conv(cin, channels, 3, False, 1.0)

    def forward(self, h: Tensor) -> Tensor:
        return torch.tanh(self.conv(F.relu(self.bn(h))))


class Generator(nn.Module):
    """Unconditional G: forward(z [B, latent_dim]) -> images [B, C, S, S] in [-1, 1]."""

    fedgan_blocks: List[str]

    def __init__(self, channels: int = 3, image_size: int = 32, latent_dim: int = 128,
                 g_width: int = 64, num_classes: int = 0):
        super().__init__()
        widths = [m * g_width for m in arch(image_size)[0]]
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.width0 = widths[0]
        self.linear = nn.Linear(latent_dim, 4 * 4 * widths[0])
        _glorot(self.linear.weight, self.linear.bias, 1.0)
        self.blocks = nn.ModuleList(
            [GBlock(a, b, num_classes) for a, b in zip(widths[:-1], widths[1:])])
        self.out = GOutput(widths[-1], channels)
        self.fedgan_blocks = (["linear"] + [f"blocks.{i}" for i in range(len(self.blocks))] +
                              ["out"])

    def generate(self, z: Tensor, y: Optional[Tensor]) -> Tensor:
        h = self.linear(z).view(z.size(0), self.width0, 4, 4)
        for block in self.blocks:
            h = block(h, y)
        return self.out(h)

    def forward(self, z: Tensor) -> Tensor:
        return self.generate(z, None)


class ConditionalGenerator(Generator):
    """Conditional G: forward(z [B, latent_dim], y int64 [B])."""

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.generate(z, y)


class DBlock(nn.Module):
    """ReLU, conv3x3, ReLU, conv3x3, avgpool 2 (if down); shortcut conv1x1 then avgpool when
    the width or resolution changes. The first ("optimized") block has no leading ReLU and
    pools its shortcut before the conv1x1."""

    def __init__(self, cin: int, cout: int, down: bool, first: bool, spectral: bool):
        super().__init__()
        self.down = down
        self.first = first
        self.c1 = conv(cin, cout, 3, spectral, math.sqrt(2))
        self.c2 = conv(cout, cout, 3, spectral, math.sqrt(2))
        self.sc = conv(cin, cout, 1, spectral, 1.0) if (cin != cout or down or first) else None

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.c2(F.relu(self.c1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.sc is not None:
            if self.first:
                s = self.sc(F.avg_pool2d(x, 2))
            else:
                s = self.sc(x)
                if self.down:
                    s = F.avg_pool2d(s, 2)
        return h + s


class Discriminator(nn.Module):
    """Unconditional D: forward(x [B, C, S, S]) -> one logit per image [B]."""

    fedgan_blocks: List[str]

    def __init__(self, channels: int = 3, image_size: int = 32, d_width: int = 128,
                 num_classes: int = 0, d_norm: str = "spectral"):
        super().__init__()
        if d_norm not in ("spectral", "none"):
            raise ValueError(f"sngan: d_norm {d_norm!r} (expected spectral or none)")
        spectral = d_norm == "spectral"
        _, mults, downs = arch(image_size)
        widths = [channels] + [m * d_width for m in mults]
        self.num_classes = num_classes
        self.blocks = nn.ModuleList([
            DBlock(widths[i], widths[i + 1], downs[i], i == 0, spectral)
            for i in range(len(mults))])
        features = widths[-1]
        self.head = SpectralLinear(features, 1) if spectral else nn.Linear(features, 1)
        _glorot(self.head.weight, self.head.bias, 1.0)
        self.embed = None
        if num_classes > 0:
            self.embed = (SpectralEmbedding(num_classes, features) if spectral
                          else nn.Embedding(num_classes, features))
            _glorot(self.embed.weight, None, 1.0)
        self.fedgan_blocks = [f"blocks.{i}" for i in range(len(self.blocks))] + ["head"]

    @torch.jit.export
    def features(self, x: Tensor) -> Tensor:
        """ReLU then global sum pooling: [B, F]."""
        h = x
        for block in self.blocks:
            h = block(h)
        return F.relu(h).sum(dim=(2, 3))

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
    """Projection D: forward(x, y int64 [B]) -> [B]."""

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.score(x, y)


def build(channels: int = 3, image_size: int = 32, latent_dim: int = 128, g_width: int = 64,
          d_width: int = 128, num_classes: int = 0, d_norm: str = "spectral"
          ) -> Tuple[Generator, Discriminator]:
    """G then D; the conditional classes when num_classes > 0."""
    g_cls = ConditionalGenerator if num_classes > 0 else Generator
    d_cls = ConditionalDiscriminator if num_classes > 0 else Discriminator
    return (g_cls(channels, image_size, latent_dim, g_width, num_classes),
            d_cls(channels, image_size, d_width, num_classes, d_norm))
