"""Analysis (encoder) and synthesis (decoder) transforms.

Designed for the compute we have (a 2-core CPU): the heavy lifting is a 16x16 block
transform (a strided convolution) initialised from the PCA of training patches, so
the autoencoder starts as a good transform coder instead of from noise. Residual
blocks whose last layer starts at zero add the nonlinearity on top: two at the
latent resolution on each side (they predict what quantization removed from the
neighbours) and a post-filter at 1/4 resolution in the decoder that removes block
edges. Every block starts as the identity, so training only ever improves on PCA.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

BLOCK = 16


class ResBlock(nn.Module):
    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, gain: torch.Tensor | None = None) -> torch.Tensor:
        branch = self.conv2(F.leaky_relu(self.conv1(x), 0.1))
        return x + (branch if gain is None else gain.view(1, -1, 1, 1) * branch)


class ConditionedBlocks(nn.ModuleList):
    """Residual blocks whose branches are scaled by a learned gain per level.

    The decoder knows how many stages a file holds, so it can smooth hard at low
    quality and stay faithful at high quality instead of compromising between them.
    With ``levels=0`` the blocks are unconditioned (the encoder's case).
    """

    def __init__(self, channels: int, hidden: int, blocks: int, levels: int = 0):
        super().__init__(ResBlock(channels, hidden) for _ in range(blocks))
        self.gains = nn.Parameter(torch.ones(levels, blocks, channels)) if levels else None

    def forward(self, x: torch.Tensor, level: int | None = None) -> torch.Tensor:
        for i, block in enumerate(self):
            x = block(x, None if self.gains is None else self.gains[level, i])
        return x


class PixelFilter(nn.Module):
    """Residual blocks run on a space-to-depth view at 1/4 resolution (cheap at full size)."""

    def __init__(self, blocks: int, hidden: int, levels: int = 0):
        super().__init__()
        self.blocks = ConditionedBlocks(48, hidden, blocks, levels)

    def forward(self, x: torch.Tensor, level: int | None = None) -> torch.Tensor:
        return F.pixel_shuffle(self.blocks(F.pixel_unshuffle(x, 4), level), 4)

    @property
    def row_halo(self) -> int:
        """Full-resolution rows an output row depends on above and below (two 3x3 convs
        per block at 1/4 resolution): what lets it run in bands of rows (model/exact.py)."""
        return 4 * 2 * len(self.blocks)


class Encoder(nn.Module):
    """RGB in [0, 1] -> latent grid with ``latent_channels`` at 1/16 resolution."""

    stride = BLOCK
    halo = 6          # latent cells: the decoder sees 5 cells around a position

    def __init__(self, latent_channels: int, hidden: int):
        super().__init__()
        self.prefilter = PixelFilter(1, hidden // 2)
        self.analysis = nn.Conv2d(3, latent_channels, BLOCK, stride=BLOCK)
        self.blocks = ConditionedBlocks(latent_channels, hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.analysis(self.prefilter(x)))


class Decoder(nn.Module):
    """Latent grid -> RGB (unclamped; callers clamp when they make pixels).

    ``level`` is the number of stages decoded minus one (``levels - 1``: unquantized,
    used in training to keep the transforms invertible at the high-rate end).
    """

    def __init__(self, latent_channels: int, hidden: int, levels: int):
        super().__init__()
        self.blocks = ConditionedBlocks(latent_channels, hidden, 2, levels)
        self.synthesis = nn.ConvTranspose2d(latent_channels, 3, BLOCK, stride=BLOCK)
        self.postfilter = PixelFilter(2, hidden // 2, levels)

    def forward(self, y: torch.Tensor, level: int) -> torch.Tensor:
        return self.postfilter(self.synthesis(self.blocks(y, level)), level)


@torch.no_grad()
def pca_init(encoder: Encoder, decoder: Decoder, images: torch.Tensor) -> None:
    """Set the block transforms to the principal components of 16x16 patches.

    Orthonormal, so squared error in the latent equals squared pixel error (in [0, 1]
    units) per block at the start: the quantizer's bit costs can be set in those units.
    """
    m = encoder.analysis.out_channels
    patches = F.unfold(images - 0.5, BLOCK, stride=BLOCK).permute(0, 2, 1).reshape(-1, 3 * BLOCK * BLOCK)
    cov = (patches.T @ patches / len(patches)).double()
    _, vecs = torch.linalg.eigh(cov)
    basis = vecs.flip(1)[:, :m].float()                       # [768, m], largest first
    w = basis.T.reshape(m, 3, BLOCK, BLOCK)
    encoder.analysis.weight.copy_(w)
    encoder.analysis.bias.copy_(-0.5 * w.sum((1, 2, 3)))
    decoder.synthesis.weight.copy_(w)
    decoder.synthesis.bias.fill_(0.5)


# -- model v2: a deep multi-scale transform ------------------------------------------
class SimplifiedGDN(nn.Module):
    """y = x / (beta + gamma |x|) (Johnston et al. 2019): the divisive normalisation that
    makes shallow conv transforms competitive for compression, at the cost of a 1x1
    conv. ``inverse`` multiplies instead (the synthesis side). Parameters are kept
    non-negative by squaring, so the denominator never reaches zero."""

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(channels))
        self.gamma = nn.Parameter(0.1 * torch.eye(channels).view(channels, channels, 1, 1))

        self._exact = None

    def make_exact(self, weights_on_grid, inputs_on_grid) -> None:
        """For exact synthesis (exact.py): fixed grid weights, grid inputs to the conv."""
        weight, bias = weights_on_grid(self.gamma.pow(2), self.beta.pow(2) + 1e-6, self.gamma.shape[1])
        self._exact = (weight, bias, inputs_on_grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._exact is None:
            norm = F.conv2d(x.abs(), self.gamma.pow(2), self.beta.pow(2) + 1e-6)
        else:
            weight, bias, on_grid = self._exact
            norm = F.conv2d(on_grid(x.abs()), weight, bias)
        return x * norm if self.inverse else x / norm


class PhaseBias(nn.Module):
    """An offset per output pixel position within the 16x16 latent cell, per quality
    level. The v2 decoders leave a fixed pattern with the latent grid's period in every
    photo (step 28000 of `lite128`: 1.1-2.9 pixel levels rms depending on the level,
    correlation 0.94-1.0 between photos), which the conv weights, busy with the signal,
    do not remove. Training learns part of it; export refits it on whole photos
    (train/export.py, training log Part 10)."""

    def __init__(self, levels: int, period: int = 16):
        super().__init__()
        self.period = period
        self.phase_bias = nn.Parameter(torch.zeros(levels, 3, period, period))

    def forward(self, x: torch.Tensor, level: int) -> torch.Tensor:
        n, c, h, w = x.shape
        p = self.period
        bias = self.phase_bias[level].to(x.dtype).view(1, c, 1, p, 1, p)
        return (x.view(n, c, h // p, p, w // p, p) + bias).view(n, c, h, w)


def _down(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 5, stride=2, padding=2)


def _up(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)


def _upsampling(cin: int, hidden: int, times: int) -> list[nn.Module]:
    """``times`` stride-2 transposed convs, each followed by inverse GDN."""
    layers = []
    for i in range(times):
        layers += [_up(cin if i == 0 else hidden, hidden), SimplifiedGDN(hidden, inverse=True)]
    return layers


class DeepEncoder(nn.Module):
    """RGB -> latent at 1/16: four stride-2 5x5 convs with GDN between them (the
    analysis of bmshj2018), then residual blocks at the latent resolution."""

    stride = 16
    halo = 8          # latent cells: receptive field of the analysis plus the blocks

    def __init__(self, latent_channels: int, hidden: int):
        super().__init__()
        self.analysis = nn.Sequential(
            _down(3, hidden), SimplifiedGDN(hidden),
            _down(hidden, hidden), SimplifiedGDN(hidden),
            _down(hidden, hidden), SimplifiedGDN(hidden),
            _down(hidden, latent_channels))
        self.blocks = ConditionedBlocks(latent_channels, hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.analysis(x - 0.5))


class DeepDecoder(nn.Module):
    """Latent -> RGB: residual blocks scaled per quality level (as in v1), then four
    stride-2 transposed convs with inverse GDN between them."""

    def __init__(self, latent_channels: int, hidden: int, levels: int):
        super().__init__()
        self.blocks = ConditionedBlocks(latent_channels, hidden, 2, levels)
        self.synthesis = nn.Sequential(*_upsampling(latent_channels, hidden, 3), _up(hidden, 3))
        self.phase = PhaseBias(levels)

    def forward(self, y: torch.Tensor, level: int) -> torch.Tensor:
        return self.phase(self.synthesis(self.blocks(y, level)) + 0.5, level)


TRANSFORMS = {"pca16": (Encoder, Decoder), "deep": (DeepEncoder, DeepDecoder)}


# -- model v2 "grown": v1 plus zero-initialised multi-scale nonlinear branches -------
class _GrowthAnalysis(nn.Module):
    """RGB -> a correction to v1's block-transform latent, through 1/4 and 1/8
    resolution with GDN; its last conv starts at zero, so the grown model starts
    exactly where v1 stands."""

    def __init__(self, latent_channels: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(48, 64, 3, padding=1), SimplifiedGDN(64),
            nn.Conv2d(64, 96, 3, stride=2, padding=1), SimplifiedGDN(96),
            nn.Conv2d(96, latent_channels, 3, stride=2, padding=1))
        nn.init.zeros_(self.layers[-1].weight)
        nn.init.zeros_(self.layers[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(F.pixel_unshuffle(x - 0.5, 4))


class _GrowthSynthesis(nn.Module):
    """Latent -> a correction to v1's block synthesis, up through 1/8 and 1/4
    resolution with inverse GDN and a residual block; last conv starts at zero."""

    def __init__(self, latent_channels: int):
        super().__init__()
        self.up8 = nn.ConvTranspose2d(latent_channels, 96, 4, stride=2, padding=1)
        self.gdn8 = SimplifiedGDN(96, inverse=True)
        self.block8 = ResBlock(96, 96)
        self.up4 = nn.ConvTranspose2d(96, 64, 4, stride=2, padding=1)
        self.gdn4 = SimplifiedGDN(64, inverse=True)
        self.out = nn.Conv2d(64, 48, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        z = self.block8(self.gdn8(self.up8(y)))
        return F.pixel_shuffle(self.out(self.gdn4(self.up4(z))), 4)


class GrownEncoder(Encoder):
    halo = 6

    def __init__(self, latent_channels: int, hidden: int):
        super().__init__(latent_channels, hidden)
        self.growth = _GrowthAnalysis(latent_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.analysis(self.prefilter(x)) + self.growth(x))


class GrownDecoder(Decoder):
    def __init__(self, latent_channels: int, hidden: int, levels: int):
        super().__init__(latent_channels, hidden, levels)
        self.growth = _GrowthSynthesis(latent_channels)

    def forward(self, y: torch.Tensor, level: int) -> torch.Tensor:
        z = self.blocks(y, level)
        return self.postfilter(self.synthesis(z) + self.growth(z), level)


TRANSFORMS["grown"] = (GrownEncoder, GrownDecoder)


class LiteEncoder(nn.Module):
    """Like DeepEncoder, but the full and half resolution layers are replaced by a
    space-to-depth view (pixel-unshuffle to 48 channels at 1/4): what a 2-core CPU can
    afford at full resolution."""

    stride = 16
    halo = 8

    def __init__(self, latent_channels: int, hidden: int):
        super().__init__()
        self.analysis = nn.Sequential(
            nn.Conv2d(48, hidden, 3, padding=1), SimplifiedGDN(hidden),
            _down(hidden, hidden), SimplifiedGDN(hidden),
            _down(hidden, latent_channels))
        self.blocks = ConditionedBlocks(latent_channels, hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.analysis(F.pixel_unshuffle(x - 0.5, 4)))


class LiteDecoder(nn.Module):
    """Mirror of LiteEncoder: residual blocks per quality level at 1/16, two stride-2
    transposed convs with inverse GDN to 1/4, then depth-to-space to RGB."""

    def __init__(self, latent_channels: int, hidden: int, levels: int):
        super().__init__()
        self.blocks = ConditionedBlocks(latent_channels, hidden, 2, levels)
        self.synthesis = nn.Sequential(*_upsampling(latent_channels, hidden, 2),
                                       nn.Conv2d(hidden, 48, 3, padding=1))
        self.phase = PhaseBias(levels)

    def forward(self, y: torch.Tensor, level: int) -> torch.Tensor:
        return self.phase(F.pixel_shuffle(self.synthesis(self.blocks(y, level)), 4) + 0.5, level)


TRANSFORMS["lite"] = (LiteEncoder, LiteDecoder)
