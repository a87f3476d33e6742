"""Training the post-filter (aecodec/postfilter.py): pairs, float training, integer export.

1. Pairs: random crops of the training photos (never the held-out ones), each coded
   and decoded by the codec itself at every rung (stages, detail step) of the shipped
   ladder, or of ``--rungs``, so the filter learns the artifacts the decoder really
   produces; each rung is a class.
2. Float training of ``FloatFilter`` with each crop's squared error divided by the
   unfiltered one: the coarse qualities' errors are ten times the fine ones', and a
   plain mean would spend the whole network on them. From random weights, or
   (``--init-from``) from the shipped filter, deepened by identity layers: runs from
   scratch differ run to run at the fine qualities, and the shipped 11-layer filter
   grew, two layers at a time, from the best 5-layer one (TRAINING_LOG Parts 17-18).
   ``--augment`` turns the patches by the square's symmetries (Part 18), and
   ``--intervals`` takes the loss after holding the output to the detail layer's
   intervals, as a version 5 decoder does (``Constraint``; Part 19).
3. Integer export: activation grids from the activations' range, then training with
   the integer rounding simulated (straight-through gradients), then the weights on
   the grids that ``postfilter.check_exact`` accepts.

Run: ``python -m aecodec.train.postfilter pairs OUT.npz --crops 230 --part 0`` (one
process per part), then ``python -m aecodec.train.postfilter fit OUT_DIR PAIRS...``,
then ``install weights OUT_DIR``. The filter after scaling up (format version 8) is
trained the same way on pairs of the decoder's own output at the scaled rungs:
``pairs ... --rungs 2:0:2,3:0:2,3:54:2,3:54:1.5,3:54:1.25,3:44:1.25,3:38:1.25,3:32:1.25
--after-decoder``, then ``fit ... --layers 11 --init-from weights --augment`` (which
starts from the card's filter after scaling up; TRAINING_LOG Parts 23-25), and
``install`` makes it the card's "upfilter".
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import NamedTuple

import click
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import detail, postfilter
from ..card import Rung, newest_format_version
from ..format import parse

CROP = 256
PIXEL_BITS = 8           # the network sees pixels / 2**8
# The activation grid is set so that this share of activations fits 0..255 (the rest
# clip at 255): 0.999 rather than 0.9999 gave a 7-layer filter grids twice as fine in
# four layers and +0.02 dB at the finest quality (TRAINING_LOG Part 17).
ACT_QUANTILE = 0.999


def make_pairs(codec, files: list[Path], crops: int, seed: int, rungs: list[tuple],
               log=print, after_decoder: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(originals [N, CROP, CROP, 3], decoded [N, rungs, CROP, CROP, 3]), uint8; one
    decode per rung (stages, detail step[, scale]): the filter's classes. Decoded
    without the post-filter the file names, at full size (the post-filter runs before
    any scaling up, so a rung's scale is not the post-filter's business), or,
    ``after_decoder``, as the decoder makes it (its filter and scaling up included,
    not the filter after scaling up that the card may name): pairs for that filter
    (format version 8; TRAINING_LOG Parts 23-24)."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    orig = np.zeros((crops, CROP, CROP, 3), np.uint8)
    dec = np.zeros((crops, len(rungs), CROP, CROP, 3), np.uint8)
    t0 = time.time()
    for i in range(crops):
        with Image.open(files[rng.integers(len(files))]) as im:
            im = im.convert("RGB")
        scale = rng.uniform(0.5, 1.0)            # as the model's training: hides JPEG blocking
        size = min(int(round(CROP / scale)), im.width, im.height)
        x0, y0 = rng.integers(0, im.width - size + 1), rng.integers(0, im.height - size + 1)
        crop = np.asarray(im.resize((CROP, CROP), Image.Resampling.BICUBIC, box=(x0, y0, x0 + size, y0 + size)))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        orig[i] = crop = np.ascontiguousarray(crop)
        for r, rung in enumerate(map(Rung.of, rungs)):
            if after_decoder:
                data = parse(codec.encode_at(crop, *rung)).without_upfilter().to_bytes()
            else:                                                  # full size, without the post-filter
                data = parse(codec.encode_at(crop, rung.stages, rung.step)).without_filter().to_bytes()
            dec[i, r] = codec.decode_pixels(data).rgb
        if i % 20 == 0:
            log(f"pairs: {i}/{crops} crops, {time.time() - t0:.0f} s")
    return orig, dec


def _start_class(filt: postfilter.PostFilter, rung: Rung) -> int:
    """The class of ``filt`` a new class for ``rung`` starts from: its class for that
    rung at the nearest scale it has classes for (the post-filter's: full size)."""
    nearest = min({r.scale for r in filt.class_rungs}, key=lambda s: (abs(math.log(s / rung.scale)), s))
    return filt.class_for(rung.stages, rung.step, nearest)


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.floor(x + 0.5) - x).detach()


class FloatFilter(nn.Module):
    """The float twin of ``postfilter.PostFilter``: 3x3 convolutions, ReLU, a per-class
    bias in the first layer, and the last layer's output added to the input. After
    ``quantize`` it rounds as the integer network does."""

    def __init__(self, channels: int, layers: int, classes: int):
        super().__init__()
        sizes = [3] + [channels] * (layers - 1) + [3]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(sizes, sizes[1:]))
        self.class_bias = nn.Embedding(classes, channels)
        nn.init.zeros_(self.class_bias.weight)
        self.convs[-1].weight.data.mul_(0.1)
        nn.init.zeros_(self.convs[-1].bias)
        self.act_bits: list[int] | None = None       # per hidden layer, set by ``quantize``
        self.weight_bits: list[int] | None = None

    def forward(self, x: torch.Tensor, cls: torch.Tensor, record: list | None = None) -> torch.Tensor:
        a = x
        for i, conv in enumerate(self.convs):
            w = conv.weight
            if self.weight_bits is not None:
                scale = 2.0 ** self.weight_bits[i]
                w = _round_ste(w * scale) / scale
            z = F.conv2d(a, w, conv.bias, padding=1)
            if i == 0:
                z = z + self.class_bias(cls)[:, :, None, None]
            if i + 1 == len(self.convs):
                return x + z
            a = F.relu(z)
            if record is not None:
                record.append(a.detach())
            if self.act_bits is not None:
                scale = 2.0 ** self.act_bits[i]
                a = _round_ste(a * scale).clamp(0, 255) / scale

    @classmethod
    @torch.no_grad()
    def from_integer(cls, filt: postfilter.PostFilter, layers: int, class_rungs) -> "FloatFilter":
        """The float twin of a trained integer filter, to train on from where it
        stopped: class k starts from ``filt``'s class for ``class_rungs[k]`` (at the
        nearest scale ``filt`` has classes for), and
        ``layers`` beyond the filter's are identity layers inserted before the last
        (a ReLU passes its non-negative input unchanged), so the start computes what
        ``filt`` does up to its rounding."""
        channels = filt.layers[0].weight.shape[0]
        if layers < len(filt.layers) or any(layer.weight.shape[0] != channels for layer in filt.layers[:-1]):
            raise ValueError(f"cannot grow a {len(filt.layers)}-layer filter to {layers} layers")
        model = cls(channels, layers, len(class_rungs))
        in_bits = PIXEL_BITS
        for i, layer in enumerate(filt.layers):
            out_bits = PIXEL_BITS     # any hidden grid gives the same function (ReLU is homogeneous)
            conv = model.convs[i if i + 1 < len(filt.layers) else layers - 1]
            conv.weight.copy_(layer.weight.double() * 2.0 ** (in_bits - layer.shift - out_bits))
            bias = (layer.bias.double() - 2 ** (layer.shift - 1)) / 2.0 ** (layer.shift + out_bits)
            if i == 0:
                conv.bias.zero_()
                model.class_bias.weight.copy_(bias[[_start_class(filt, r) for r in map(Rung.of, class_rungs)]])
            else:
                conv.bias.copy_(bias)
            in_bits = out_bits
        for conv in model.convs[len(filt.layers) - 1:layers - 1]:
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[:, :, 1, 1].copy_(torch.eye(channels))
        return model

    @torch.no_grad()
    def quantize(self, x: torch.Tensor, cls: torch.Tensor) -> None:
        """Fix the grids: activations from their ``ACT_QUANTILE`` on a batch, weights as
        fine as keeps their sums within a quarter of the exact float32 range (room for
        the weights to grow while training goes on)."""
        record = []
        self(x, cls, record)
        self.act_bits = [int(math.floor(math.log2(255 / max(float(torch.quantile(a.flatten()[::97], ACT_QUANTILE)),
                                                                1e-3))))
                         for a in record]
        self.weight_bits = [self._weight_bits(i) for i in range(len(self.convs))]

    def _weight_bits(self, i: int) -> int:
        worst = float(self.convs[i].weight.abs().sum(dim=(1, 2, 3)).max()) * 255
        bits = min(int(math.floor(math.log2(postfilter.FLOAT32_EXACT / 4 / worst))),
                   int(math.floor(math.log2(32000 / float(self.convs[i].weight.abs().max())))))
        if i + 1 == len(self.convs):
            # the last layer also adds the pixels at 2**shift (shift = bits + input bits
            # - PIXEL_BITS): keep that term within half the exact range too
            in_bits = self.act_bits[-1] if self.act_bits else PIXEL_BITS
            bits = min(bits, int(math.log2(postfilter.FLOAT32_EXACT / 2 / 255)) - in_bits + PIXEL_BITS)
        return bits

    @torch.no_grad()
    def to_layers(self) -> tuple[postfilter.Layer, ...]:
        """The integer network (see ``postfilter``'s docstring for the arithmetic)."""
        layers = []
        in_bits = PIXEL_BITS
        for i, conv in enumerate(self.convs):
            wb = self._weight_bits(i)
            weight = torch.round(conv.weight.double() * 2.0 ** wb).long()
            bias = conv.bias.double()
            if i == 0:
                bias = bias[None] + self.class_bias.weight.double()
            out_bits = self.act_bits[i] if i + 1 < len(self.convs) else PIXEL_BITS
            shift = wb + in_bits - out_bits
            bias = torch.round(bias * 2.0 ** (wb + in_bits)).long() + (1 << (shift - 1))
            layers.append(postfilter.Layer(weight, bias, shift))
            in_bits = out_bits
        return tuple(layers)


def _to_input(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(0, 3, 1, 2).float().div(2 ** PIXEL_BITS)


class Batch(NamedTuple):
    decoded: torch.Tensor          # [N, 3, P, P], pixels / 2**PIXEL_BITS
    original: torch.Tensor
    classes: torch.Tensor          # [N]
    base: torch.Tensor | None      # the decodes' base images (``Pairs`` with ``base_classes``)
    gains: torch.Tensor | None = None  # [N, 1, P/8, P/8]: each block's step multiplier (format version 9)


class Pairs:
    """Training crops and their decodes; the last ``held_out`` crops only score.

    ``augment`` turns each patch and its decode by one of the square's 8 symmetries
    (flips and transposes). The codec's artifacts are close to symmetric (averaging
    the shipped filter's outputs over turned copies gained up to 0.07 dB), so the
    filter sees more variety from the same crops: +0.005 dB mean over an 8000-step
    run without it (TRAINING_LOG Part 18).

    ``base_classes`` (``base_classes_of``) names for each class the class whose decodes
    are its base images; batches then carry them, cut on the detail layer's 8x8 grid,
    to train through ``Constraint``, with each block's step multiplier where the pairs'
    files adapted their steps (``adaptive``: every crop is a whole coded image, so its
    gains are what its decoder used)."""

    def __init__(self, orig: np.ndarray, dec: np.ndarray, held_out: int, seed: int, augment: bool = False,
                 base_classes: list[int] | None = None, adaptive: detail.Adaptive | None = None):
        self.orig, self.dec = orig[:-held_out], dec[:-held_out]
        self.val_orig, self.val_dec = orig[-held_out:], dec[-held_out:]
        self.rng = np.random.default_rng(seed)
        self.augment = augment
        self.base_classes = base_classes
        self.block_gains = self.val_gains = None         # [N, classes, CROP/8, CROP/8, 1] / 4096
        if adaptive is not None and base_classes:
            blocks = CROP // detail.BLOCK

            def of(dec):
                out = np.ones((len(dec), dec.shape[1], blocks, blocks, 1), np.float32)
                for k in range(len(dec)):
                    for b in {b for b in base_classes if b >= 0}:    # once per base, shared by its classes
                        g = adaptive.gains(dec[k, b]).reshape(blocks, blocks, 1) / detail.UNIT_GAIN
                        out[k, [c for c, cb in enumerate(base_classes) if cb == b]] = g
                return out
            self.block_gains, self.val_gains = of(self.dec), of(self.val_dec)

    def val_batch_gains(self, k: int, c: int) -> torch.Tensor | None:
        """Held-out crop ``k``'s block gains for class ``c``, as a batch of one."""
        return None if self.val_gains is None else torch.from_numpy(self.val_gains[k, c][None]).permute(0, 3, 1, 2)

    def batch(self, size: int, patch: int) -> Batch:
        n, q = len(self.orig), self.dec.shape[1]
        i, c = self.rng.integers(n, size=size), self.rng.integers(q, size=size)
        grid = detail.BLOCK if self.base_classes else 1
        y, x = grid * self.rng.integers(0, (CROP - patch) // grid + 1, size=(2, size))
        dec = np.stack([self.dec[i[k], c[k], y[k]:y[k] + patch, x[k]:x[k] + patch] for k in range(size)])
        orig = np.stack([self.orig[i[k], y[k]:y[k] + patch, x[k]:x[k] + patch] for k in range(size)])
        base = None
        if self.base_classes:
            base = np.stack([self.dec[i[k], max(self.base_classes[c[k]], 0), y[k]:y[k] + patch, x[k]:x[k] + patch]
                             for k in range(size)])
        gains = None
        if self.block_gains is not None:
            b, by, bx = patch // detail.BLOCK, y // detail.BLOCK, x // detail.BLOCK
            gains = np.stack([self.block_gains[i[k], c[k], by[k]:by[k] + b, bx[k]:bx[k] + b] for k in range(size)])
        if self.augment:
            for k, turn in enumerate(self.rng.integers(8, size=size)):
                dec[k], orig[k] = _symmetry(dec[k], turn), _symmetry(orig[k], turn)
                if base is not None:
                    base[k] = _symmetry(base[k], turn)
                if gains is not None:                    # the block grid turns with the pixels
                    gains[k] = _symmetry(gains[k], turn)
        return Batch(_to_input(dec), _to_input(orig), torch.from_numpy(c),
                     None if base is None else _to_input(base),
                     None if gains is None else torch.from_numpy(gains).permute(0, 3, 1, 2))


def base_classes_of(rungs) -> list[int]:
    """For each class (stages, step): the class of the same stages without a detail
    layer, whose decodes are its base images; -1 for classes without a detail layer."""
    rungs = [(r.stages, r.step) for r in map(Rung.of, rungs)]
    try:
        return [rungs.index((n, 0.0)) if st else -1 for n, st in rungs]
    except ValueError:
        raise ValueError("training through the intervals needs a class without a detail layer "
                         "for the stages of every class with one") from None


class Constraint:
    """``detail.constrain`` in torch, differentiable, on batches of patches cut on the
    8x8 grid: the levels are recovered from each decode and its base by rounding (the
    uint8 rounding moves a coefficient by far less than half a step)."""

    def __init__(self, rungs, intervals: detail.Intervals):
        rungs = [Rung.of(r) for r in rungs]
        steps = [detail.TILT.steps(int(round(r.step * 16))) / 16 if r.step else np.ones((3, 64)) for r in rungs]
        self.steps = torch.tensor(np.stack(steps), dtype=torch.float32).reshape(-1, 3, 1, 1, 8, 8)
        self.has_detail = torch.tensor([bool(r.step) for r in rungs])
        self.zero, self.below, self.above = (v / 64 for v in (intervals.zero, intervals.below, intervals.above))
        self.dct = torch.tensor(detail.DCT, dtype=torch.float32)
        self.colour = torch.tensor(detail.COLOUR, dtype=torch.float32)

    def _coefs(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] -> [N, 3, H/8, W/8, 8, 8] (colour transform, then block DCT)."""
        n, _, h, w = x.shape
        y = torch.einsum("dc,nchw->ndhw", self.colour, x)
        return self.dct @ y.reshape(n, 3, h // 8, 8, w // 8, 8).transpose(3, 4) @ self.dct.T

    def _pixels(self, c: torch.Tensor) -> torch.Tensor:
        n, _, bh, bw = c.shape[:4]
        y = (self.dct.T @ c @ self.dct).transpose(3, 4).reshape(n, 3, bh * 8, bw * 8)
        return torch.einsum("dc,ndhw->nchw", self.colour, y)

    def __call__(self, out: torch.Tensor, batch: Batch) -> torch.Tensor:
        """``out`` (the filter's output for ``batch``) with its detail classes held."""
        held = self.has_detail[batch.classes]
        if not held.any():
            return out
        scale = 2.0 ** PIXEL_BITS
        steps = self.steps[batch.classes[held]]                         # [n, 3, 1, 1, 8, 8]
        if batch.gains is not None:                                     # [n, 1, bh, bw] -> every block its own
            steps = steps * batch.gains[held][:, :, :, :, None, None]
        base = batch.base[held] * scale
        level = torch.round(self._coefs(batch.decoded[held] * scale - base) / steps)
        size = level.abs()
        upper = torch.where(size == 0, self.zero, size + self.above)
        lower = torch.where(size == 0, -self.zero, size - self.below)
        low, high = torch.where(level < 0, -upper, lower), torch.where(level < 0, -lower, upper)
        coefs = torch.minimum(torch.maximum(self._coefs(out[held] * scale - base) / steps, low), high)
        out = out.clone()
        out[held] = (base + self._pixels(coefs * steps)) / scale
        return out


def _symmetry(square: np.ndarray, turn: int) -> np.ndarray:
    """One of the 8 symmetries of a square image [n, n, C] (bit 0: mirror, 1: flip, 2: transpose)."""
    if turn & 1:
        square = square[:, ::-1]
    if turn & 2:
        square = square[::-1]
    return square.transpose(1, 0, 2) if turn & 4 else square


def relative_loss(out: torch.Tensor, dec: torch.Tensor, orig: torch.Tensor) -> torch.Tensor:
    before = ((dec - orig) ** 2).mean(dim=(1, 2, 3)) + 1e-6
    return (((out - orig) ** 2).mean(dim=(1, 2, 3)) / before).mean()


def gains(run, pairs: Pairs, constraint: Constraint | None = None) -> list[float]:
    """Mean PSNR gain (dB) per class on the held-out pairs of ``run(decoded uint8
    image, class)`` -> filtered uint8 image, held by ``constraint`` if given."""
    out = []
    for c in range(pairs.val_dec.shape[1]):
        g = []
        for k, (orig, dec) in enumerate(zip(pairs.val_orig, pairs.val_dec[:, c])):
            filtered = run(dec, c)
            if constraint is not None:
                base = pairs.val_dec[k, max(pairs.base_classes[c], 0)]
                held = constraint(_to_input(filtered[None]), Batch(_to_input(dec[None]), None, torch.tensor([c]),
                                                                   _to_input(base[None]), pairs.val_batch_gains(k, c)))
                filtered = (held[0] * 2 ** PIXEL_BITS).round().clamp(0, 255).permute(1, 2, 0).numpy()
            before = np.mean((dec.astype(np.float64) - orig) ** 2)
            after = np.mean((filtered.astype(np.float64) - orig) ** 2)
            g.append(10 * math.log10(before / max(after, 1e-9)))
        out.append(float(np.mean(g)))
    return out


@torch.no_grad()
def _float_filtered(model: FloatFilter, dec: np.ndarray, cls: int) -> np.ndarray:
    """The float model's output rounded to pixels, as the integer filter's is (its
    last bias carries the half)."""
    out = model(_to_input(dec[None]).contiguous(memory_format=torch.channels_last), torch.tensor([cls]))
    return _round_ste(out[0] * 2 ** PIXEL_BITS).clamp(0, 255).permute(1, 2, 0).numpy()


def fit(pairs: Pairs, channels: int, layers: int, steps: int, qat_steps: int, lr: float,
        qat_lr: float | None = None, batch: int = 16, patch: int = 64, init: FloatFilter | None = None,
        constraint: Constraint | None = None, log=print) -> tuple[postfilter.PostFilter, dict]:
    """Float steps on one cosine from ``lr``, then the integer-aware steps: on the same
    cosine's tail, or on a cosine of their own from ``qat_lr``. ``init``: start from
    this network (``FloatFilter.from_integer``) instead of a random one. With a
    ``constraint`` the loss is taken after it, as a version 5 decoder holds the output."""
    torch.manual_seed(0)
    classes = pairs.dec.shape[1]
    model = (init or FloatFilter(channels, layers, classes)).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr)
    total = steps + qat_steps
    warmup = 300

    def lr_at(s):
        if qat_lr is not None and s >= steps:
            return qat_lr / lr * 0.5 * (1 + math.cos(math.pi * (s - steps) / qat_steps))
        return min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    t0, running, history = time.time(), 1.0, []

    def train(first: int, last: int) -> None:
        nonlocal running
        for step in range(first, last + 1):
            b = pairs.batch(batch, patch)
            out = model(b.decoded.contiguous(memory_format=torch.channels_last), b.classes)
            if constraint is not None:
                out = constraint(out, b)
            loss = relative_loss(out, b.decoded, b.original)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            running = 0.98 * running + 0.02 * loss.item()
            if step % 1000 == 0 or step == total:
                log(f"step {step}: relative error {running:.4f}, {time.time() - t0:.0f} s")
                history.append({"step": step, "relative_error": round(running, 5),
                                "seconds": round(time.time() - t0)})

    train(1, steps)
    float_gain = gains(lambda d, c: _float_filtered(model, d, c), pairs, constraint)
    log(f"float filter, held-out PSNR gain per class (dB): {[round(g, 4) for g in float_gain]}")
    b = pairs.batch(64, patch)
    model.quantize(b.decoded, b.classes)
    log(f"integer grids: activations 2^-{model.act_bits}, weights 2^-{model.weight_bits}")
    train(steps + 1, total)
    integer = postfilter.PostFilter(model.to_layers(), b"\0" * 8)
    postfilter.check_exact(integer.layers)
    return integer, {"history": history, "act_bits": model.act_bits,
                     "float_held_out_gain_db": [round(g, 4) for g in float_gain]}


@click.group()
def main():
    """Train the post-filter."""


@main.command("pairs")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--crops", type=int, default=230)
@click.option("--part", type=int, default=0, help="Seeds the crops (run parts in parallel).")
@click.option("--rungs", default="",
              help="stages:step[:scale],... the classes to train (default: the card's ladder).")
@click.option("--after-decoder", is_flag=True,
              help="Decode as the decoder does, its post-filter and scaling up included (pairs for "
                   "a filter after the decoder's output).")
@click.option("--threads", type=int, default=1)
def pairs_command(out, crops, part, rungs, after_decoder, threads):
    """Code and decode random training crops at every rung (stages, detail step[,
    scale]) into OUT (.npz)."""
    from ..codec import Codec
    from ..model.vqvae import parse_ladder
    from .config import TrainConfig
    from .data import list_training_images, split
    torch.set_num_threads(threads)
    config = TrainConfig()
    train, _ = split(list_training_images(config.data_dirs), config.val_every_nth)
    codec = Codec(device="cpu")
    try:
        rungs = parse_ladder(rungs) if rungs else list(codec.ladder)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--rungs") from None
    if not after_decoder:      # the post-filter sees every rung at the size it is coded: one class each
        rungs = list(dict.fromkeys(Rung(r.stages, r.step) for r in rungs))
    orig, dec = make_pairs(codec, train, crops, 100 + part, rungs, after_decoder=after_decoder)
    rows = np.array([Rung.of(r) for r in rungs])
    # class k: rungs[k]; the detail layers' steps adapt to each block as ``adaptive`` says
    np.savez(out, orig=orig, dec=dec, ladder=rows, after_decoder=after_decoder,
             adaptive=np.frombuffer(detail.ADAPTIVE.to_bytes(), np.uint8))


@main.command("fit")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.argument("pair_files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--channels", type=int, default=16)
@click.option("--layers", type=int, default=4)
@click.option("--steps", type=int, default=20000, help="Float training steps.")
@click.option("--qat-steps", type=int, default=3000, help="Steps with the integer rounding simulated.")
@click.option("--qat-lr", type=float, default=None,
              help="Restart those steps on a cosine from this rate (default: the float cosine's tail).")
@click.option("--lr", type=float, default=1e-3)
@click.option("--held-out", type=int, default=40, help="Crops kept out of training, for the gains.")
@click.option("--init-from", type=click.Path(exists=True, file_okay=False), default=None,
              help="Start from these weights' filter (its channels; --layers may add layers): their "
                   "filter after scaling up for pairs made --after-decoder, where they have one, "
                   "else their post-filter.")
@click.option("--augment/--no-augment", default=False,
              help="Turn training patches by the square's 8 symmetries.")
@click.option("--intervals", default="",
              help="zero,below,above in 1/64 step: train through holding the output to the detail "
                   "layer's intervals (file format version 5), as the decoder will.")
@click.option("--threads", type=int, default=2)
def fit_command(out_dir, pair_files, channels, layers, steps, qat_steps, qat_lr, lr, held_out, init_from,
                augment, intervals, threads):
    """Train on PAIR_FILES and write OUT_DIR/postfilter.safetensors with its record."""
    from safetensors.torch import save
    torch.set_num_threads(threads)
    loaded = [np.load(f) for f in pair_files]
    # the rungs as the card lists them: [stages, step], with a scale only where it is not 1
    rungs = [tuple(r)[:2] if r.scale == 1 else tuple(r) for r in map(Rung.of, loaded[0]["ladder"])] \
        if "ladder" in loaded[0] else None
    after_decoder = all("after_decoder" in d and bool(d["after_decoder"]) for d in loaded)
    constraint = base_classes = None
    if intervals:
        try:
            held = detail.Intervals(*(int(v) for v in intervals.split(",")))
            if rungs is None:
                raise ValueError("needs pairs with their rungs")
            base_classes = base_classes_of(rungs)
        except (TypeError, ValueError) as exc:
            raise click.BadParameter(str(exc), param_hint="--intervals") from None
        constraint = Constraint(rungs, held)
    adaptive = {bytes(d["adaptive"]) if "adaptive" in d else b"" for d in loaded}   # pairs of earlier releases: none
    if len(adaptive) > 1:
        raise click.UsageError("the pair files were made with different adaptive steps")
    adaptive = adaptive.pop()
    pairs = Pairs(np.concatenate([d["orig"] for d in loaded]), np.concatenate([d["dec"] for d in loaded]),
                  held_out, seed=0, augment=augment, base_classes=base_classes,
                  adaptive=detail.Adaptive.from_bytes(adaptive) if adaptive else None)
    init = start = None
    if init_from:
        from ..weights import load_weights
        start_weights = load_weights(init_from)
        start = (after_decoder and start_weights.upfilter) or start_weights.postfilter
        if start is None or rungs is None:
            raise click.UsageError("--init-from needs weights with a post-filter and pairs with their rungs")
        try:
            init = FloatFilter.from_integer(start, layers, rungs)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--layers") from None
        channels = start.layers[0].weight.shape[0]
    integer, record = fit(pairs, channels, layers, steps, qat_steps, lr, qat_lr, init=init, constraint=constraint)
    if rungs:
        record["classes"] = [list(r) for r in rungs]
    record["after_decoder"] = after_decoder
    if constraint is not None:
        record["intervals"] = list(held.to_bytes())
    if start:
        record["init_from"] = start.filter_id.hex()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    blob = save(postfilter.tensors_of(integer.layers))
    (out / "postfilter.safetensors").write_bytes(blob)
    record.update(act_quantile=ACT_QUANTILE, augment=augment, channels=channels, layers=layers, steps=steps,
                  qat_steps=qat_steps, qat_lr=qat_lr, lr=lr, pairs=[str(f) for f in pair_files],
                  held_out_crops=held_out, held_out_gain_db=[round(g, 4) for g in gains(integer.apply, pairs, constraint)])
    (out / "postfilter.json").write_text(json.dumps(record, indent=2) + "\n")
    click.echo(f"held-out PSNR gain per class (dB): {record['held_out_gain_db']}")


@main.command("install")
@click.argument("weights_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
def install_command(weights_dir, run_dir):
    """Put RUN_DIR's post-filter into WEIGHTS_DIR and name it in the model card (as its
    "upfilter" when trained on the decoder's output: the filter after scaling up). The
    filter it replaces stays, under its id, in the card's "earlier_postfilters", so
    the files that name it still decode to the same pixels."""
    import hashlib
    from ..card import CARD_NAME
    blob = (Path(run_dir) / "postfilter.safetensors").read_bytes()
    record = json.loads((Path(run_dir) / "postfilter.json").read_text())
    key = "upfilter" if record.get("after_decoder") else "postfilter"
    if key == "upfilter" and not all(len(rung) == 3 and rung[2] > 1 for rung in record.get("classes", [])):
        raise click.UsageError("a filter after scaling up needs classes of rungs coded at a reduced size")
    folder = Path(weights_dir)
    card = json.loads((folder / CARD_NAME).read_text())
    digest = hashlib.sha256(blob).hexdigest()
    previous = card.get(key)
    if previous and previous["sha256"] != digest:
        old_id = previous["sha256"][:16]
        kept = f"postfilter-{old_id}.safetensors"
        (folder / previous["file"]).rename(folder / kept)
        card.setdefault("earlier_postfilters", []).append(
            {"file": kept, "sha256": previous["sha256"], "filter_id": old_id})
    (folder / f"{key}.safetensors").write_bytes(blob)
    card[key] = {"file": f"{key}.safetensors", "sha256": digest, "filter_id": digest[:16],
                 "classes": record["classes"],      # (stages, step[, scale]) each class was trained on
                 "training": {k: v for k, v in record.items() if k not in ("history", "classes")}}
    if "intervals" in record:                                # what the encoder holds its output to
        card[key]["intervals"] = record["intervals"]
    card["format_version"] = newest_format_version(card)
    (folder / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n")
    click.echo(f"{'filter after scaling up' if key == 'upfilter' else 'post-filter'} {digest[:16]} "
               f"installed in {folder}")


if __name__ == "__main__":
    main()
