"""The VQ-VAE: encoder -> residual product VQ -> decoder.

Follows CompressAI's contract: ``forward`` is for training (differentiable, soft
rate), ``compress`` / ``decompress`` work on discrete indices for coding.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict, fields

import numpy as np
import torch
from torch import nn

from .quantizer import ResidualProductVQ
from .tiling import decode_tiled, encode_tiled
from .transforms import TRANSFORMS, pca_init


@dataclass(frozen=True)
class ModelConfig:
    # "pca16": v1, a PCA-initialised 16x16 block transform with residual blocks;
    # "deep": v2, four stride-2 conv + GDN layers per side (transforms.py).
    transform: str = "pca16"
    hidden: int = 192
    groups: int = 48
    group_dim: int = 4
    stages: int = 8
    codes: int = 64
    bit_cost: float = 0.025      # squared block error (in [0, 1] units) per bit, stage 1
    bit_cost_decay: float = 0.64  # each later stage refines at a finer trade-off
    # Encoder-side codeword search only (decoding never depends on these): the uniform
    # share mixed into the index prior, a multiplier on the bit costs, and the number
    # of partial paths the search keeps across stages.
    search_mix: float = 0.2
    search_scale: float = 1.0
    search_beam: int = 1
    # The quality ladder, also encoder policy: quality q writes ladder[q - 1] =
    # (stages, detail step[, scale]), where step 0 means no detail layer
    # (aecodec/detail.py) and a scale above 1 codes the photo that many times smaller
    # (aecodec/resample.py). Empty: quality q is q stages, no detail.
    ladder: tuple = ()
    # Encoder policy too: (step, bpp). A detail layer at a step up to ``step`` goes
    # over one stage more than its ladder rung names when the rung's stages take under
    # ``bpp`` bits per pixel: on smooth photos (which cheap stages betray, and which the
    # rule looks at before making any base image) the finest steps code the residual
    # of a better base for fewer bits; on busy ones they do not (TRAINING_LOG Part 22).
    # Empty: never.
    deeper_base: tuple = ()

    def __post_init__(self):
        if self.transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {sorted(TRANSFORMS)}, not {self.transform!r}")
        object.__setattr__(self, "ladder", self._checked_ladder(self.ladder))
        object.__setattr__(self, "deeper_base", self._checked_deeper_base(self.deeper_base))
        if isinstance(self.search_beam, bool) or not isinstance(self.search_beam, int) \
                or not 1 <= self.search_beam <= self.codes:
            raise ValueError(f"search_beam must be an integer from 1 to codes ({self.codes}), "
                             f"not {self.search_beam!r}")
        if not self.search_scale > 0:
            raise ValueError(f"search_scale must be positive, not {self.search_scale!r}")

    def _checked_ladder(self, ladder) -> tuple:
        from ..detail import MAX_STEP, MIN_STEP
        from ..resample import MAX_SCALE
        out = []
        for entry in ladder:
            try:
                stages, step, *rest = entry
                (scale,) = rest or (1.0,)
            except (TypeError, ValueError):
                raise ValueError(f"ladder entries are [stages, detail step] or [stages, detail step, scale], "
                                 f"not {entry!r}") from None
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 1 <= scale <= MAX_SCALE:
                raise ValueError(f"ladder scale must be a number from 1 to {MAX_SCALE}, not {scale!r}")
            if isinstance(stages, bool) or not isinstance(stages, int) or not 1 <= stages <= self.stages:
                raise ValueError(f"ladder stages must be an integer from 1 to {self.stages}, not {stages!r}")
            if isinstance(step, bool) or not isinstance(step, (int, float)) \
                    or not (step == 0 or MIN_STEP <= step <= MAX_STEP):
                raise ValueError(f"ladder detail step must be 0 or from {MIN_STEP} to {MAX_STEP}, not {step!r}")
            out.append((stages, float(step)) if scale == 1 else (stages, float(step), float(scale)))
        if len(out) > 255:
            raise ValueError("the ladder has at most 255 qualities")
        return tuple(out)

    @staticmethod
    def _checked_deeper_base(rule) -> tuple:
        if not rule:
            return ()
        try:
            step, bpp = rule
        except (TypeError, ValueError):
            raise ValueError(f"deeper_base is [detail step, bits per pixel], not {rule!r}") from None
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 for v in (step, bpp)):
            raise ValueError(f"deeper_base's detail step and bits per pixel must be positive numbers, "
                             f"not {rule!r}")
        return float(step), float(bpp)

    def quality_ladder(self) -> tuple:
        """The ``card.Rung`` of qualities 1, 2, ..."""
        from ..card import ladder_of
        return ladder_of({"ladder": self.ladder, "stages": self.stages})

    @property
    def latent_channels(self) -> int:
        return self.groups * self.group_dim

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)


def parse_ladder(text: str) -> list:
    """"2:0:1.5,2:0,8:24" -> [Rung(2, 0.0, 1.5), Rung(2, 0.0), Rung(8, 24.0)] (checked
    by ModelConfig)."""
    from ..card import Rung
    try:
        rungs = [item.split(":") for item in text.split(",")]
        if any(not 2 <= len(r) <= 3 for r in rungs):
            raise ValueError
        return [Rung(int(r[0]), float(r[1]), *(float(x) for x in r[2:])) for r in rungs]
    except ValueError:
        raise ValueError(f"a ladder is stages:step or stages:step:scale, separated by commas, "
                         f"not {text!r}") from None


class VQVAE(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        encoder, decoder = TRANSFORMS[config.transform]
        self.encoder = encoder(config.latent_channels, config.hidden)
        self.decoder = decoder(config.latent_channels, config.hidden, config.stages + 1)
        self.stride, self.halo = encoder.stride, encoder.halo
        self.quantizer = ResidualProductVQ(config.stages, config.groups, config.group_dim,
                                           config.codes, config.bit_cost, config.bit_cost_decay)
        self.quantizer.search_mix = config.search_mix
        self.quantizer.search_scale = config.search_scale
        self.quantizer.search_beam = config.search_beam

    def init_from_data(self, images: torch.Tensor) -> None:
        """PCA block transforms (v1 only), then k-means codebooks, from training crops."""
        if self.config.transform == "pca16":
            pca_init(self.encoder, self.decoder, images)
        with torch.no_grad():
            self.quantizer.init_codebooks(self.encoder(images))

    def forward(self, x: torch.Tensor, n_stages: int | None):
        """x in [0, 1]. ``n_stages=None`` skips quantization (the unquantized level)."""
        y = self.encoder(x)
        if n_stages is None:
            return {"x_hat": self.decoder(y, self.config.stages),
                    "bits": torch.zeros(x.shape[0], device=x.device), "y": y}
        y_hat, bits, indices = self.quantizer(y, n_stages)
        return {"x_hat": self.decoder(y_hat, n_stages - 1), "bits": bits, "y": y, "y_hat": y_hat,
                "indices": indices}

    @torch.no_grad()
    def load_with_fewer_stages(self, state: dict) -> int:
        """Load weights trained with fewer (or as many) stages; returns their stage count.

        Kept: the transforms and the trained stages. The decoder gains of the new
        levels start between the last quantized level and the unquantized one. The
        new stages' codebooks are left for the caller to initialise from data
        (``quantizer.init_codebooks(..., start=old_stages)``). EMA statistics are
        not part of exported weights and are skipped.
        """
        own = self.state_dict()
        old = state["quantizer.codebooks"].shape[0]
        new = self.config.stages
        if old > new:
            raise ValueError(f"weights have {old} stages, the model only {new}")
        for key, value in state.items():
            if key in ("quantizer.ema_count", "quantizer.ema_sum", "quantizer.bit_cost"):
                continue                      # EMA is rebuilt; bit costs follow the config
            if key not in own:
                raise ValueError(f"weights do not fit the model: unexpected {key}")
            target = own[key]
            if value.shape == target.shape:
                target.copy_(value)
            elif key.endswith(".gains"):      # [old + 1 levels, ...] -> [new + 1, ...]
                target[:old].copy_(value[:old])
                target[new].copy_(value[old])
                for j in range(old, new):
                    t = (j - old + 1) / (new - old + 1)
                    target[j].copy_(value[old - 1] + t * (value[old] - value[old - 1]))
            elif key.startswith("quantizer.") and value.shape[1:] == target.shape[1:]:
                target[:old].copy_(value)
            else:
                raise ValueError(f"weights do not fit the model: {key} {tuple(value.shape)}")
        self.load_state_dict(own)
        return old

    @torch.no_grad()
    def estimate_distortion_weights(self, x: torch.Tensor, step: float = 0.05) -> torch.Tensor:
        """Pixel squared error per unit squared latent error, per latent channel, through
        the decoder at full quality; stored in the quantizer for the codeword search."""
        y = self.encoder(x)
        level = self.config.stages - 1
        base = self.decoder(y, level)
        positions = y.shape[0] * y.shape[2] * y.shape[3]
        weights = torch.empty(y.shape[1], device=y.device)
        for c in range(y.shape[1]):
            d = torch.zeros_like(y)
            d[:, c] = step
            err = (self.decoder(y + d, level) - base).pow(2).sum()
            weights[c] = err / (step * step * positions)
        weights = weights.clamp(1e-3, 10.0).view(self.config.groups, self.config.group_dim)
        self.quantizer.distortion_weight.copy_(weights)
        return weights

    # -- coding: the model's contract with the codec ---------------------------------
    def cells(self, height: int, width: int) -> tuple[int, int]:
        """The latent grid of an image of ``height`` x ``width`` pixels."""
        return -(-height // self.stride), -(-width // self.stride)

    @torch.no_grad()
    def compress(self, x: torch.Tensor, n_stages: int, tile: int | None = None) -> torch.Tensor:
        """x [B, 3, H, W] of any size, uint8 (0..255) or float in [0, 1] -> indices
        [n_stages, B, G, h, w] (int16). The image is padded to a multiple of the stride
        by repeating its edge (cropped off after decoding); images wider or taller than
        ``tile`` latent cells go through the encoder in tiles."""
        h, w = self.cells(*x.shape[2:])
        y = encode_tiled(self.encoder, x, tile or max(h, w), self.stride, self.halo)
        return self.quantizer.quantize(y, n_stages)

    @torch.no_grad()
    def decompress(self, indices: torch.Tensor, height: int, width: int, tile: int | None = None,
                   decoder: nn.Module | None = None) -> np.ndarray:
        """indices [S, B, G, h, w] -> uint8 RGB [B, height, width, 3]. ``decoder``: the
        network that makes the pixels (the codec passes its exact copy, model/exact.py).
        Each tile's latent is dequantized on its own, so no whole-image latent is made."""
        decoder = decoder or self.decoder
        dtype = next(decoder.parameters()).dtype
        level = indices.shape[0] - 1
        cells = tuple(indices.shape[3:])

        def latent(a0, a1, b0, b1):
            return self.quantizer.dequantize(indices[..., a0:a1, b0:b1]).to(dtype)

        return decode_tiled(lambda t: decoder(t, level), latent, indices.shape[1], cells, height, width,
                            tile or max(cells), self.stride, self.halo)
