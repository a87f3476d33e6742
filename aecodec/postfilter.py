"""The post-filter: a small integer network that takes coding artifacts out of the decoded image.

The detail layer quantizes 8x8 DCT blocks and the base image comes from 16x16 codeword
blocks; both leave structured errors (ringing, blocking, flattened texture) that a
few 3x3 convolutions predict from the decoded pixels alone. On held-out photos such a
filter gave 0.1-0.3 dB at equal rate (docs/TRAINING_LOG.md, Part 15), more than the
linear loop filters and deblocking measured before (Part 13).

Every file must decode to the same pixels on every machine, so the network is integer:
integer weights and biases, activations that are integers 0..255, and between layers a
floor division by a power of two. Convolutions run in float32 on a CPU (float64
elsewhere); ``check_exact`` proves at load time that every product and partial sum
stays below 2**24 (2**53), where float arithmetic on integers is exact whatever the
summation order, so the result cannot depend on threads, tiles or the library's
algorithm. Each layer is

    y = floor((conv(a, W) + b) / 2**shift)

clamped to 0..255 for the hidden layers; the last layer's output is a correction
added to the decoded pixels at the same scale:
``pixel = clamp(floor((p * 2**shift + conv(a, W) + b) / 2**shift), 0, 255)``. The first
layer's bias is chosen per *class* (a byte in the file; each class was trained on
files of one (stages, detail step), ``class_rungs``), since what to correct depends on
how coarse the coding was.

The filter is a safetensors file next to the weights, named in the model card with
its sha256; files name it by the first 8 bytes of that hash (FORMAT.md, version 4).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .card import Rung
from .errors import WeightsError
from .model.exact import exact_context

FLOAT32_EXACT = 1 << 24      # integers below this are exact in float32, sums included
# Output pixels a side of each tile the filter runs on. On a CPU the tiles are small so
# that each layer's output (16 float32 channels of a 278x278 tile with its halo: 4.9 MB)
# reuses memory the allocator already holds: with row bands of 2**19 pixels every
# layer's 33 MB output came from fresh pages, and the 11-layer filter took 219 ms on a
# Kodak photo and 11.3 s at 12 MP, against 114 ms and 3.9 s in 256-pixel tiles
# (TRAINING_LOG Part 18). A GPU gets larger tiles: fewer, fuller kernel launches.
CPU_TILE = 256
GPU_TILE = 1024


@dataclass(frozen=True)
class Layer:
    weight: torch.Tensor      # int64 [out, in, 3, 3]
    bias: torch.Tensor        # int64 [out], or [classes, out] for the first layer
    shift: int


@dataclass(frozen=True)
class PostFilter:
    layers: tuple[Layer, ...]
    filter_id: bytes          # first 8 bytes of the sha256 of its file
    # the rung (stages, detail step, scale) of the files each class was trained on (the
    # model card's "classes"): the encoder picks the class by these, not by the ladder
    class_rungs: tuple[Rung, ...] = ()
    # what the encoder holds this filter's output to in files with a detail layer (the
    # card's "intervals", 3 bytes of ``detail.Intervals``; empty: not held, version 4)
    intervals: bytes = b""

    @property
    def classes(self) -> int:
        return self.layers[0].bias.shape[0]

    def class_for(self, n_stages: int, step: float, scale: float = 1.0) -> int | None:
        """The class for a file of ``n_stages`` + detail ``step`` coded ``scale`` times
        smaller: the class trained on such files, or else on the nearest of its kind
        and scale (with a detail layer: the nearest step and then stage count; without:
        the nearest stage count); None when no class was trained at that scale."""
        rungs = self.class_rungs
        if not rungs:
            raise ValueError(f"post-filter {self.filter_id.hex()} has no class rungs: it only decodes "
                             "files that name it (a filter of an earlier release)")
        at_scale = [i for i, rung in enumerate(rungs) if abs(rung.scale - scale) < 1e-9]
        if not at_scale:
            return None
        same_kind = [i for i in at_scale if bool(rungs[i].step) == bool(step)] or at_scale

        def distance(i: int) -> tuple:
            stages, rung_step, _ = rungs[i]
            steps_apart = abs(math.log(rung_step / step)) if step and rung_step else 0.0
            return steps_apart, abs(stages - n_stages), i

        return min(same_kind, key=distance)

    @property
    def halo(self) -> int:
        return len(self.layers)           # one pixel per 3x3 convolution

    def apply(self, rgb: np.ndarray, cls: int, device: torch.device | str = "cpu") -> np.ndarray:
        """The filtered uint8 image [H, W, 3] for class ``cls`` (``rgb`` is not changed)."""
        if not 0 <= cls < self.classes:
            raise ValueError(f"post-filter class {cls} is outside 0..{self.classes - 1}")
        device = torch.device(device)
        dtype = torch.float32 if device.type == "cpu" else torch.float64
        h, w = rgb.shape[:2]
        tile = max(2 * self.halo, CPU_TILE if device.type == "cpu" else GPU_TILE)
        weights = [(layer.weight.to(device, dtype), (layer.bias[cls] if i == 0 else layer.bias).to(device, dtype),
                    2.0 ** -layer.shift) for i, layer in enumerate(self.layers)]
        out = np.empty_like(rgb)
        with torch.no_grad(), exact_context(device):
            for r0 in range(0, h, tile):
                r1 = min(h, r0 + tile)
                a0, a1 = max(0, r0 - self.halo), min(h, r1 + self.halo)
                for c0 in range(0, w, tile):
                    c1 = min(w, c0 + tile)
                    b0, b1 = max(0, c0 - self.halo), min(w, c1 + self.halo)
                    part = torch.from_numpy(np.array(rgb[a0:a1, b0:b1])).to(device)     # a copy: rgb may be read-only
                    out[r0:r1, c0:c1] = self._run(part, weights)[r0 - a0:r1 - a0, c0 - b0:c1 - b0].cpu().numpy()
        return out

    @staticmethod
    def _run(part: torch.Tensor, weights) -> torch.Tensor:
        """The network on a tile of the image; pixels within ``halo`` of a tile's cut
        edge are wrong and discarded by ``apply`` (zero padding stands for the image border)."""
        pixels = part.permute(2, 0, 1)[None].to(weights[0][0].dtype).contiguous(memory_format=torch.channels_last)
        a = pixels
        for i, (w, b, scale) in enumerate(weights):
            acc = torch.nn.functional.conv2d(a, w, b, padding=1)
            if i + 1 < len(weights):
                a = acc.mul_(scale).floor_().clamp_(0, 255)
            else:
                a = acc.add_(pixels / scale).mul_(scale).floor_().clamp_(0, 255)
        return a[0].permute(1, 2, 0).to(torch.uint8)


def check_exact(layers) -> None:
    """Raise unless every accumulator of every layer stays below 2**24 in magnitude,
    so float32 computes it exactly (see the module docstring)."""
    for i, layer in enumerate(layers):
        fan_in = layer.weight[0].numel()
        worst = int(layer.weight.abs().sum(dim=(1, 2, 3)).max()) * 255 + int(layer.bias.abs().max())
        if i + 1 == len(layers):
            worst += 255 << layer.shift
        if worst >= FLOAT32_EXACT:
            raise WeightsError(f"post-filter layer {i} (fan-in {fan_in}) can reach {worst}, "
                               f"beyond exact float32 arithmetic (2**24)")
        if not 0 <= layer.shift <= 24:
            raise WeightsError(f"post-filter layer {i} has a shift of {layer.shift}")


def tensors_of(layers) -> dict[str, torch.Tensor]:
    """The safetensors dict of ``layers`` (weights as int16, biases as int32)."""
    out = {}
    for i, layer in enumerate(layers):
        out[f"layer{i}.weight"] = layer.weight.to(torch.int16).contiguous()
        out[f"layer{i}.bias"] = layer.bias.to(torch.int32).contiguous()
        out[f"layer{i}.shift"] = torch.tensor([layer.shift], dtype=torch.int32)
    return out


def from_tensors(tensors: dict[str, torch.Tensor], filter_id: bytes, name: str = "post-filter") -> PostFilter:
    """The filter in a safetensors dict (``tensors_of``'s layout), checked for shape and
    for exact float32 arithmetic; ``filter_id``: the first 8 bytes of its file's sha256."""
    layers = []
    while f"layer{len(layers)}.weight" in tensors:
        i = len(layers)
        try:
            weight = tensors[f"layer{i}.weight"].to(torch.int64)
            bias = tensors[f"layer{i}.bias"].to(torch.int64)
            shift = int(tensors[f"layer{i}.shift"][0])
        except KeyError as exc:
            raise WeightsError(f"{name} lacks {exc}") from None
        layers.append(Layer(weight, bias, shift))
    _check_shapes(layers, name)
    check_exact(layers)
    return PostFilter(tuple(layers), filter_id)


def _check_shapes(layers: list[Layer], name: str) -> None:
    if len(layers) < 2:
        raise WeightsError(f"{name} has {len(layers)} layers, needs at least 2")
    channels = 3
    for i, layer in enumerate(layers):
        w, b = layer.weight, layer.bias
        first, last = i == 0, i + 1 == len(layers)
        ok = (w.dim() == 4 and tuple(w.shape[1:]) == (channels, 3, 3)
              and (not last or w.shape[0] == 3)
              and (b.dim() == 2 and b.shape[0] >= 1 if first else b.dim() == 1) and b.shape[-1] == w.shape[0])
        if not ok:
            raise WeightsError(f"{name}: layer {i} has weight {tuple(w.shape)} and bias "
                               f"{tuple(b.shape)}")
        channels = w.shape[0]
