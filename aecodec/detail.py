"""The detail layer: what the learned base image misses, coded as a JPEG-like residual.

The VQ-VAE keeps 192 coefficients per 16x16 block, so however many stages it spends
its reconstruction stops near 37 dB, and its last stages buy little (about 2 dB per
extra bit per pixel on Kodak). The residual it leaves is high-frequency detail that a
plain 8x8 DCT with uniform scalar quantization codes at 4 to 6 dB per bit per pixel
(docs/TRAINING_LOG.md, Part 4). So the upper qualities spend their bits here.

Everything the decoder computes is integer or exactly reproducible: the entropy
tables follow from one transmitted byte per class (colour channel x frequency) by
Python's correctly rounded ``math.exp`` and sequential products, so a file decodes
the same on any machine. The residual is taken against the decoded base image; where
another device's networks round a base pixel differently, the output moves by at most
that one level.

Payload layout (big-endian; docs/FORMAT.md has the full rules):

    step     2   quantizer step in 1/16 pixel-value units (orthonormal DCT + colour)
    tilt     3   file format version 3 only: how much coarser the higher frequencies
                 and the colour channels are quantized (``Tilt``)
    offsets  15  signed byte per context, added to every class byte in that context
    near     6   file format version 10 only: signed byte per near-frequency bucket,
                 added as well (``NEAR_EDGES``)
    classes  192 one byte per class, in coding order (``ORDER``): 0 = every level of the
                 class is zero (not coded), b > 0 = Laplace scale 2^((b - 96) / 12) steps
    words    the range coder's 32-bit words, little-endian

A version 6 file carries this payload with its class bytes packed (``format.pack_detail``);
the container unpacks it before it comes here. A version 9 file's header adds how the
steps adapt to each block (``Adaptive``), from the base image the decoder already has;
a version 10 file's payload codes the same levels with near-frequency contexts too.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import struct
from dataclasses import dataclass

import constriction
import numpy as np

BLOCK = 8
CLASSES = 3 * BLOCK * BLOCK
MAX_LEVEL = 4096                  # |coefficient| / step is clamped here (never reached at step >= 1)
PRECISION = 1 << 24
MIN_STEP = 1.0
MAX_STEP = 0xFFFF / 16
_HEAD = struct.Struct(">H")
_TILT = struct.Struct(">BBB")

# Orthonormal colour transform (luma-like, then two opponent channels): squared error
# in these channels is squared RGB error, so one step serves all three.
COLOUR = np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]], dtype=np.float64)
COLOUR /= np.linalg.norm(COLOUR, axis=1, keepdims=True)


class DetailError(ValueError):
    """A detail payload that does not decode."""


def _require_bytes(fields, what: str) -> None:
    """Raise unless every field of the dataclass ``fields`` is an int 0..255."""
    for field in dataclasses.fields(fields):
        value = getattr(fields, field.name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
            raise ValueError(f"{what} {field.name} must be a byte, not {value!r}")


@dataclass(frozen=True)
class Tilt:
    """Quantizer steps that rise with frequency (file format version 3).

    A uniform step is what squared error wants, but MS-SSIM, like the eye, weighs the
    coarse scales more than the finest: on held-out photos ``TILT`` gave 8.4-8.7% fewer
    detail-layer bits at equal MS-SSIM for 1.1% more at equal PSNR (docs/TRAINING_LOG.md,
    Part 14). Class (c, u, v) is quantized with the step times

        luma:    1 + luma/16 * (u + v)/14
        colour:  chroma_gain/16 * (1 + chroma/16 * (u + v)/14)

    computed in integers (``steps``), so every machine dequantizes alike. Each field
    is a byte; ``chroma_gain`` is at least 16 so no class is finer than the step.
    """
    luma: int
    chroma: int
    chroma_gain: int

    def __post_init__(self):
        _require_bytes(self, "tilt")
        if self.chroma_gain < 16:
            raise ValueError(f"tilt chroma_gain must be at least 16, not {self.chroma_gain}")

    def steps(self, code: int) -> np.ndarray:
        """Per-class steps [3, 64] in 1/16 units for a step of ``code`` / 16 (rounded half up)."""
        freq = np.add.outer(np.arange(BLOCK), np.arange(BLOCK)).ravel().astype(np.int64)
        luma = (code * (224 + self.luma * freq) + 112) // 224
        colour = (code * self.chroma_gain * (224 + self.chroma * freq) + 1792) // 3584
        return np.stack([luma, colour, colour])


# The encoder's tilt (Part 14): steps 2.5x coarser at the highest luma frequency, and
# colour 1.25x coarser at DC, 5x at its highest.
TILT = Tilt(24, 48, 20)
# The file format version of a payload ``encode`` writes with a tilt (2 without one).
TILTED_VERSION = 3


@dataclass(frozen=True)
class Intervals:
    """Where the post-filter's output is held, per DCT coefficient (file format versions 5-6).

    A decoded level says where the true coefficient was: within about half a step of
    it. The post-filter sees only pixels and sometimes moves a coefficient out of that
    range; clamping it back (``constrain``) cannot add error when the intervals hold
    the truth, since the transforms are orthonormal. Intervals a little narrower than
    the quantizer's cells did better still on held-out photos, +0.06 dB PSNR on
    average over the ladder's detail steps (docs/TRAINING_LOG.md, Part 19). In 1/64 of
    each class's step, on the coefficient's magnitude:

        level 0:      within +-zero
        level l != 0: within |l| - below .. |l| + above (the sign of l)

    Any bytes make a valid file; these are the encoder's choice.
    """
    zero: int
    below: int
    above: int

    def __post_init__(self):
        _require_bytes(self, "interval")

    def to_bytes(self) -> bytes:
        return bytes((self.zero, self.below, self.above))

    @classmethod
    def from_bytes(cls, data: bytes) -> "Intervals":
        if len(data) != 3:
            raise ValueError(f"intervals are 3 bytes, not {len(data)}")
        return cls(*data)


# Adaptive quantization (file format version 9): fixed-point tables, so that every
# machine derives the same step for every block. _OCTAVE_EIGHTHS[j] = 2^(30 + j/8)
# rounded, the thresholds of a block variance's eighth of an octave; GAIN[i] =
# 4096 * 2^((i - GAIN_RANGE) / 32) rounded, a block's step multiplier in 1/4096.
_OCTAVE_EIGHTHS = np.array([round(2 ** (30 + j / 8)) for j in range(1, 8)], dtype=np.int64)
GAIN_RANGE = 64                  # multipliers from 1/4 (-64/32 octaves) to 4
GAIN = np.array([round(4096 * 2 ** (i / 32)) for i in range(-GAIN_RANGE, GAIN_RANGE + 1)], dtype=np.int64)
UNIT_GAIN = 4096
# Integer luma weights (sum 256) for a block's variance.
_LUMA = np.array([77, 150, 29], dtype=np.int64)


@dataclass(frozen=True)
class Adaptive:
    """A step per block from the base image's local variance (file format versions 9-10).

    MS-SSIM scores an error against the local variance it sits in: the same squared
    error costs far more in a smooth region than in a busy one, where squared error
    weighs them alike. Steps finer where the base image is smooth and coarser where it
    is busy, as x264's adaptive quantization does for SSIM, took 3.4% fewer bits at
    equal MS-SSIM for 1.2% more at equal PSNR on the validation photos, over the whole
    ladder, at strength 10 (docs/TRAINING_LOG.md, Part 26). The decoder has the base image before it dequantizes, so this costs no
    side information. Block b's step is multiplied by

        ((v_b + floor) / G) ^ (strength / 128)

    where v_b is the variance of the base image's luma over the 8x8 block (edges
    replicated), G the geometric mean of v + floor over the image; all in integers
    (``gains``), from eighths of an octave of variance to 1/32 octave of step.
    """
    strength: int        # the exponent times 128 (0: every gain 1)
    floor: int           # added to every block's variance, in luma levels squared

    def __post_init__(self):
        _require_bytes(self, "adaptive quantization")

    def to_bytes(self) -> bytes:
        return bytes((self.strength, self.floor))

    @classmethod
    def from_bytes(cls, data: bytes) -> "Adaptive":
        if len(data) != 2:
            raise ValueError(f"adaptive quantization is 2 bytes, not {len(data)}")
        return cls(*data)

    def gains(self, base: np.ndarray) -> np.ndarray:
        """Step multipliers in 1/4096 (int64 [blocks], the detail layer's block order)
        of base image ``base`` (uint8 [H, W, 3])."""
        h, w = base.shape[:2]
        bh, bw = -(-h // BLOCK), -(-w // BLOCK)
        n = BLOCK * BLOCK
        eighths = np.empty(bh * bw, dtype=np.int64)
        for r0, r1 in _bands(bh * BLOCK):           # int64 work bounded by one band of rows
            rows = np.minimum(np.arange(r0, r1), h - 1)                      # the last row repeated
            luma = base[rows].astype(np.int64) @ _LUMA                       # 256 x luma
            luma = np.pad(luma, ((0, 0), (0, bw * BLOCK - w)), mode="edge")
            blocks = luma.reshape(-1, BLOCK, bw, BLOCK).transpose(0, 2, 1, 3).reshape(-1, n)
            # n^2 * 256^2 * (variance + floor): exact in int64 (at most about 2^45)
            spread = n * (blocks * blocks).sum(1) - blocks.sum(1) ** 2 + self.floor * (n * 256) ** 2
            mantissa, exponent = np.frexp(np.maximum(spread, 1).astype(np.float64))   # exact: below 2^53
            fixed = (mantissa * 2.0 ** 31).astype(np.int64)                 # in [2^30, 2^31)
            eighths[r0 // BLOCK * bw:r1 // BLOCK * bw] = \
                8 * exponent.astype(np.int64) + np.searchsorted(_OCTAVE_EIGHTHS, fixed, side="right")
        total = int(eighths.sum())
        mean = (2 * total + eighths.size) // (2 * eighths.size)          # rounded half up
        # (v / G)^(s/128) = 2^(s * d / 1024) for d eighths of an octave; in 32nds: s * d / 32
        index = (self.strength * (eighths - mean) + 16) // 32
        return GAIN[np.clip(index, -GAIN_RANGE, GAIN_RANGE) + GAIN_RANGE]


# The encoder's adaptive quantization: ((v + 58) / G)^(14/128), chosen on training photos
# (strength 10 in Part 26; 14 since Part 27, where the near-frequency contexts left more
# room in PSNR: it gave the largest sum of the two BD-rates against JPEG on two draws).
ADAPTIVE = Adaptive(14, 58)


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None] + 1) * k / (2 * n)) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m


DCT = _dct_matrix(BLOCK)
# The transforms run in float32 (half the memory of float64 at 12 MP; the rounding
# they can shift is the same one-level latitude the networks already have).
_DCT32, _COLOUR32 = DCT.astype(np.float32), COLOUR.astype(np.float32)


def _forward(residual: np.ndarray) -> np.ndarray:
    """[H, W, 3] float -> coefficients [3, 64, blocks] (image padded with zeros to 8)."""
    h, w = residual.shape[:2]
    bh, bw = -(-h // BLOCK), -(-w // BLOCK)
    padded = np.zeros((bh * BLOCK, bw * BLOCK, 3), dtype=np.float32)
    padded[:h, :w] = residual @ _COLOUR32.T
    blocks = padded.reshape(bh, BLOCK, bw, BLOCK, 3).transpose(4, 0, 2, 1, 3)    # [3, bh, bw, 8, 8]
    coefs = _DCT32 @ blocks @ _DCT32.T
    return coefs.reshape(3, bh * bw, BLOCK * BLOCK).transpose(0, 2, 1)


def _inverse(coefs: np.ndarray, h: int, w: int) -> np.ndarray:
    bh, bw = -(-h // BLOCK), -(-w // BLOCK)
    blocks = coefs.transpose(0, 2, 1).reshape(3, bh, bw, BLOCK, BLOCK)
    pixels = _DCT32.T @ blocks @ _DCT32
    residual = pixels.transpose(1, 3, 2, 4, 0).reshape(bh * BLOCK, bw * BLOCK, 3)[:h, :w]
    return residual @ _COLOUR32          # COLOUR is orthonormal: its inverse is its transpose


def scale_of(byte: int) -> float:
    return 2.0 ** ((byte - 96) / 12)


@functools.lru_cache(maxsize=256)
def table(byte: int) -> np.ndarray:
    """Integer frequencies of a quantized zero-mean Laplace over -MAX_LEVEL..MAX_LEVEL.

    P(0) = 1 - e^(-1/2b), P(+-k) = (1 - P(0)) (1 - r) r^(k-1) / 2 with r = e^(-1/b); every
    level keeps at least frequency 1 so any coefficient can be coded.
    """
    b = scale_of(byte)
    r = math.exp(-1.0 / b)
    p0 = 1.0 - math.exp(-0.5 / b)
    tail = np.empty(MAX_LEVEL)
    tail[0] = 0.5 * (1.0 - p0) * (1.0 - r)
    tail[1:] = r
    tail = np.cumprod(tail)                                   # sequential: exact everywhere
    p = np.concatenate([tail[::-1], [p0], tail])
    return np.maximum(1.0, np.floor(p * PRECISION))


@functools.lru_cache(maxsize=1)
def _level_bits() -> np.ndarray:
    """-log2 P(level) under every table: [2 * MAX_LEVEL + 1, 255] (the encoder's search;
    a level's row is contiguous, as the search reads them)."""
    t = np.stack([table(byte) for byte in range(1, 256)])
    return np.ascontiguousarray(-np.log2(t / t.sum(1, keepdims=True)).T)


# Contexts: how active the base's finest stages are around the block (tertiles of
# the count of non-zero indices of its last two stages in the 16x16 cell, within the
# image: RVQ spends codes where the texture is) x how much of this block's residual
# is already coded (sum of |level| over the classes before, bucketed). Each context
# shifts every class's table byte by its own transmitted offset.
ACTIVITY_BUCKETS = 3
CODED_EDGES = (1, 2, 4, 8)
CONTEXTS = ACTIVITY_BUCKETS * (len(CODED_EDGES) + 1)
_ZIGZAG = sorted(range(BLOCK * BLOCK), key=lambda k: (k // BLOCK + k % BLOCK, k // BLOCK))
ORDER = [(c, f) for f in _ZIGZAG for c in range(3)]       # low frequencies first, channels interleaved

# Near-frequency contexts (file format version 10): a level is larger where the same
# channel's two next-lower frequencies, (u - 1, v) and (u, v - 1), are large in this
# block and the four around it. Every class is coded for every block before the next,
# so the decoder has those levels. Their sum, bucketed at NEAR_EDGES, shifts the table
# byte by a second offset, added to the first: 6 more bytes for 3-6% fewer level bits
# at the ladder's detail steps on training photos (docs/TRAINING_LOG.md, Part 27).
NEAR_EDGES = (1, 2, 4, 8, 16)
NEAR_BUCKETS = len(NEAR_EDGES) + 1
# The file format version of a payload ``encode`` writes with near-frequency contexts.
NEAR_VERSION = 10
_POSITION = {cf: j for j, cf in enumerate(ORDER)}
# Bucket of every sum up to the last edge (lookups: ``np.digitize`` is slower per class).
_CODED_BUCKET = np.digitize(np.arange(CODED_EDGES[-1] + 1), CODED_EDGES).astype(np.int8)
_NEAR_BUCKET = np.digitize(np.arange(NEAR_EDGES[-1] + 1), NEAR_EDGES).astype(np.int16)
# For each class in coding order, the classes whose levels its near context sums.
_NEAR_PRIOR = [[_POSITION[(c, (f // BLOCK - du) * BLOCK + f % BLOCK - dv)] for du, dv in ((1, 0), (0, 1))
                if f // BLOCK >= du and f % BLOCK >= dv] for c, f in ORDER]


def activity(indices: np.ndarray) -> np.ndarray:
    """RVQ indices [S, G, h, w] -> activity bucket per 16x16 cell [h, w] (0..2)."""
    count = (indices[-2:] != 0).sum((0, 1))
    ranked = np.sort(count.ravel())
    edges = [ranked[len(ranked) // 3], ranked[2 * len(ranked) // 3]]
    return np.digitize(count, edges)


def _block_activity(cells: np.ndarray, h: int, w: int) -> np.ndarray:
    bh, bw = -(-h // BLOCK), -(-w // BLOCK)
    if cells.shape != (-(-bh // 2), -(-bw // 2)):
        raise ValueError(f"activity grid {cells.shape} does not fit a {w}x{h} image")
    return (np.repeat(np.repeat(cells, 2, 0), 2, 1)[:bh, :bw].ravel() * (len(CODED_EDGES) + 1)).astype(np.int8)


def _combined(offsets: list) -> np.ndarray:
    """The offset of every context from the offsets of each dimension (the first
    dimension's index varies slowest, as the contexts are numbered)."""
    total = np.zeros(1, dtype=np.int64)
    for dim in offsets:
        total = (total[:, None] + np.asarray(dim, dtype=np.int64)[None]).ravel()
    return total


# The offsets the encoder tries (a file may hold any signed byte): on Kodak photos they
# stay within +-21 at every detail quality (TRAINING_LOG Part 27).
OFFSET_REACH = 32


def _choose_tables(levels: np.ndarray, contexts, dims: tuple[int, ...] = (CONTEXTS,)) -> tuple[np.ndarray, list]:
    """Class bytes [CLASSES] (0: all zero) and the offsets of each context dimension
    (``dims``: their sizes; a context's offset is the sum of one per dimension) that
    code ``levels`` [CLASSES, blocks] (coding order) in about the fewest bits
    (alternating minimisation); ``contexts`` yields (j, ctx) for every coded class j
    (at least) in order, ctx numbering the contexts with the first dimension varying
    slowest."""
    bits = _level_bits()
    n_contexts = math.prod(dims)
    coded = np.zeros(CLASSES, dtype=bool)
    costs = []                                         # per coded class: bits under every table byte [K, 255]
    for j, ctx in contexts:
        coded[j] = levels[j].any()
        if not coded[j]:
            continue
        key, counts = np.unique(ctx.astype(np.int64) * (2 * MAX_LEVEL + 1) + levels[j] + MAX_LEVEL,
                                return_counts=True)
        k = key // (2 * MAX_LEVEL + 1)
        starts = np.flatnonzero(np.concatenate([[True], k[1:] != k[:-1]]))
        cost = np.zeros((n_contexts, 255))
        cost[k[starts]] = np.add.reduceat(bits[key % (2 * MAX_LEVEL + 1)] * counts[:, None], starts, axis=0)
        costs.append(cost)
    offsets = [np.zeros(size, dtype=np.int64) for size in dims]
    if not costs:
        return np.zeros(CLASSES, dtype=np.int64), offsets
    cost = np.stack(costs)                                                    # [coded, K, 255]
    present = np.flatnonzero(cost.any((0, 2)))                               # contexts some block is in
    index = np.stack(np.unravel_index(present, dims))                         # [dims, present]
    shifts = np.arange(-OFFSET_REACH, OFFSET_REACH + 1)
    reach = OFFSET_REACH * len(dims)                 # the most a byte plus the offsets can leave 1..255
    # A table byte t, clipped to 1..255, reads column reach + t - 1 of the padded costs,
    # so every shift a search tries is a slice of them.
    padded = np.pad(cost[:, present], ((0, 0), (0, 0), (reach, reach)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, len(shifts), axis=2)
    rows, cols = np.arange(len(cost))[:, None], np.arange(len(present))[None]

    def best_bytes() -> np.ndarray:
        off = _combined(offsets)[present]
        total = np.zeros((len(cost), 255))
        for p, o in enumerate(off):
            total += padded[:, p, reach + o:reach + o + 255]
        return 1 + total.argmin(1)

    for _ in range(3):
        byte = best_bytes()
        for d, size in enumerate(dims):
            rest = _combined(offsets)[present] - offsets[d][index[d]]          # what the other dimensions add
            start = reach - 1 + byte[:, None] + rest[None] + shifts[0]
            spent = windows[rows, cols, start].sum(0)                         # [present, shifts]
            for value in np.unique(index[d]):
                offsets[d][value] = shifts[spent[index[d] == value].sum(0).argmin()]
    byte = np.zeros(CLASSES, dtype=np.int64)
    byte[coded] = best_bytes()
    return byte, offsets


def _groups(ctx: np.ndarray):
    """(context, block indices) for each context present, in context order, each
    group's blocks in row-major order: the order the levels are coded in."""
    order = np.argsort(ctx, kind="stable")
    counts = np.bincount(ctx.astype(np.int64))
    start = 0
    for k in np.flatnonzero(counts):
        yield int(k), order[start:start + counts[k]]
        start += counts[k]


@functools.lru_cache(maxsize=256)
def _model(byte: int):
    """Built once per table (a model is immutable; building it from 8193 frequencies
    costs more than the symbols a small class codes)."""
    return constriction.stream.model.Categorical(table(byte), perfect=False)


def _contexts(levels_of, activity_ctx: np.ndarray, grid: tuple[int, int] | None = None, coded=None):
    """Yield (position j in coding order, context per block); ``levels_of(j)`` returns
    the levels of class j once known (the decoder fills them in as it goes), or None
    where they are all zero. With ``grid`` (block rows, block columns), the contexts
    of format version 10: each of the 15 times NEAR_BUCKETS near-frequency buckets.
    With ``coded`` (a truth value per class), only the coded classes' (most classes are
    not coded at the coarse steps)."""
    coded_sum = np.zeros(activity_ctx.shape, dtype=np.int32)
    for j in range(CLASSES):
        if coded is None or coded[j]:
            ctx = activity_ctx + _CODED_BUCKET[np.minimum(coded_sum, CODED_EDGES[-1])]
            if grid is not None:
                ctx = ctx.astype(np.int16) * NEAR_BUCKETS + _near_bucket(levels_of, j, grid)
            yield j, ctx
        levels = levels_of(j)
        if levels is not None:
            coded_sum += np.abs(levels)


def _near_bucket(levels_of, j: int, grid: tuple[int, int]) -> np.ndarray:
    """Class j's near-frequency bucket per block: the sum of |level| of its two next-lower
    frequencies over the block and its four neighbours (none outside the image)."""
    near = np.zeros(grid, dtype=np.int32)
    for prior in _NEAR_PRIOR[j]:
        levels = levels_of(prior)
        if levels is not None:
            near += np.abs(levels).reshape(grid)
    around = near.copy()
    around[1:] += near[:-1]
    around[:-1] += near[1:]
    around[:, 1:] += near[:, :-1]
    around[:, :-1] += near[:, 1:]
    return _NEAR_BUCKET[np.minimum(around.ravel(), NEAR_EDGES[-1])]


# Rows of the coefficient array [CLASSES = 3 * 64, blocks] in coding order.
_ORDER_ROWS = np.array([c * BLOCK * BLOCK + f for c, f in ORDER])
# Pixel rows per band of work: every array that grows with the image is then an int16
# level (2 bytes per class and 8x8 block, so at most 6 bytes per pixel), and float
# work is bounded by one band.
BAND_ROWS = 8 * BLOCK


def _bands(h: int):
    for r0 in range(0, h, BAND_ROWS):
        yield r0, min(h, r0 + BAND_ROWS)


def deadzone_for(step):
    """The encoder's dead zone at ``step`` (a number or an array of them): 0.2 of a step
    from step 32 up, 0.1 from 16 down, linear between (docs/TRAINING_LOG.md, Part 13).

    At a coarse step a level-1 coefficient costs many more bits than a zero, so rounding
    small magnitudes down pays; at a fine step the levels' probabilities are closer and
    the error it adds costs more than the bits it saves. Measured on held-out photos
    over a 4-stage base: a fixed 0.1 lost up to 0.17 dB at step 64, a fixed 0.2 up to
    0.3 dB at steps 12-10.
    """
    return np.clip(0.1 + 0.1 * (np.asarray(step, dtype=np.float64) - 16.0) / 16.0, 0.1, 0.2)


def encode(original: np.ndarray, base: np.ndarray, step: float, cells: np.ndarray,
           deadzone: float | None = None, tilt: Tilt | None = TILT, adaptive: Adaptive | None = None,
           near: bool = False) -> bytes:
    """Code ``original - base`` (uint8 [H, W, 3] each) at quantizer ``step``; ``cells``
    is ``activity`` of the base's RVQ indices.

    ``tilt`` None writes the payload of file format version 2 (one step for every
    class), a ``Tilt`` that of version 3, and with ``near`` that of version 10 (its
    levels coded with near-frequency contexts). ``adaptive`` scales each block's steps
    by its ``Adaptive.gains`` of ``base`` (the file then says so: format version 9 or 10).
    ``deadzone`` rounds magnitudes down by that fraction of a step (an encoder choice,
    never seen by the decoder; default ``deadzone_for`` each class's own step).
    """
    code = int(round(step * 16))
    if not 16 * MIN_STEP <= code <= 0xFFFF:
        raise ValueError(f"detail step must be from {MIN_STEP} to {MAX_STEP}, not {step!r}")
    if near and tilt is None:
        raise ValueError("near-frequency contexts extend the tilted payload (version 3): they need a tilt")
    steps = _class_steps(code, tilt)
    if deadzone is None:
        deadzone = deadzone_for(steps / 16)[:, :, None].astype(np.float32)
    h, w = original.shape[:2]
    activity_ctx = _block_activity(cells, h, w)
    bw = -(-w // BLOCK)
    ordered = np.empty((CLASSES, activity_ctx.size), dtype=np.int16)     # coding order
    gains = None if adaptive is None else adaptive.gains(base)
    for r0, r1 in _bands(h):
        residual = original[r0:r1].astype(np.float32) - base[r0:r1].astype(np.float32)
        b0, b1 = r0 // BLOCK * bw, -(-r1 // BLOCK) * bw
        coefs = _forward(residual) / _scale(steps, gains, b0, b1)
        levels = np.sign(coefs) * np.floor(np.abs(coefs) + 0.5 - deadzone)
        levels = np.clip(levels, -MAX_LEVEL, MAX_LEVEL).reshape(CLASSES, -1)
        ordered[:, r0 // BLOCK * bw:r0 // BLOCK * bw + levels.shape[1]] = levels[_ORDER_ROWS]

    return _payload(ordered, code, tilt, activity_ctx, (-(-h // BLOCK), bw) if near else None)


def recode(levels: "Levels", size: tuple[int, int], cells: np.ndarray, near: bool = True) -> bytes:
    """The payload of decoded ``levels`` (``decode_levels`` of an image of ``size`` whose
    base has the activity ``cells``) in the layout of format version 10, or 3 without
    ``near``: the same levels, so the same pixels, in another layout's bytes."""
    if levels.tilt is None:
        raise ValueError("only a tilted payload (version 3 or 10) can be recoded")
    activity_ctx = _block_activity(cells, *size)
    ordered = np.zeros((CLASSES, activity_ctx.size), dtype=np.int16)
    for j, coded in enumerate(levels.ordered):
        if coded is not None:
            ordered[j] = coded
    return _payload(ordered, levels.code, levels.tilt, activity_ctx,
                    (-(-size[0] // BLOCK), -(-size[1] // BLOCK)) if near else None)


def _payload(ordered: np.ndarray, code: int, tilt: Tilt | None, activity_ctx: np.ndarray,
             grid: tuple[int, int] | None) -> bytes:
    """The payload of levels ``ordered`` [CLASSES, blocks] (coding order) at step ``code``
    (1/16 units) with near-frequency contexts where ``grid`` (block rows, columns) is given."""
    # each coded class's contexts, computed once for choosing the tables and for coding
    coded = ordered.any(1)
    contexts = [(j, ctx.astype(np.int8)) for j, ctx in _contexts(lambda j: ordered[j], activity_ctx, grid, coded)]
    byte, offsets = _choose_tables(ordered, contexts, (CONTEXTS,) if grid is None else (CONTEXTS, NEAR_BUCKETS))
    head = _HEAD.pack(code) + (b"" if tilt is None else _TILT.pack(tilt.luma, tilt.chroma, tilt.chroma_gain))
    return (head + np.concatenate(offsets).astype(np.int8).tobytes() + byte.astype(np.uint8).tobytes()
            + _code_levels(ordered, contexts, byte, _combined(offsets)))


def _scale(steps: np.ndarray, gains: np.ndarray | None, b0: int, b1: int) -> np.ndarray:
    """Float32 steps [3, 64, 1] of classes ``steps`` (1/16 units), or [3, 64, b1 - b0]
    of blocks b0..b1 with ``gains`` (1/4096): the exact product, rounded once to float32
    (the same as steps / 16 where the gain is 1), so every machine dequantizes alike."""
    if gains is None:
        return (steps * UNIT_GAIN).astype(np.float32)[:, :, None] * np.float32(1 / (16 * UNIT_GAIN))
    product = steps[:, :, None] * gains[None, None, b0:b1]
    return product.astype(np.float32) * np.float32(1 / (16 * UNIT_GAIN))


def _class_steps(code: int, tilt: Tilt | None) -> np.ndarray:
    """Steps [3, 64] in 1/16 units: ``code`` everywhere, or as ``tilt`` raises them."""
    return np.full((3, BLOCK * BLOCK), code, dtype=np.int64) if tilt is None else tilt.steps(code)


def _table_model(byte: int, offset: int):
    """The model of a class of table byte ``byte`` in a context of ``offset``."""
    return _model(min(255, max(1, int(byte) + int(offset))))


def _code_levels(ordered, contexts, byte, offsets: np.ndarray) -> bytes:
    """The range coder's words for levels in coding order (what follows the tables);
    ``contexts`` yields (j, ctx) for the classes in order, ``offsets`` each context's."""
    enc = constriction.stream.queue.RangeEncoder()
    for j, ctx in contexts:
        if byte[j]:
            for k, blocks in _groups(ctx):
                enc.encode(ordered[j][blocks].astype(np.int32) + MAX_LEVEL, _table_model(byte[j], offsets[k]))
    return enc.get_compressed().astype("<u4").tobytes()


@dataclass(frozen=True)
class Levels:
    """A detail payload's decoded levels: what ``reconstruct`` adds to the base image and
    ``constrain`` holds the post-filter's output to."""
    code: int                       # the step in 1/16 units
    tilt: Tilt | None
    ordered: list                   # per class in coding order: int16 levels per block, or None (all zero)
    gains: np.ndarray | None = None  # format version 9: each block's step multiplier in 1/4096

    def class_steps(self) -> np.ndarray:
        return _class_steps(self.code, self.tilt)

    def adapted(self, adaptive: Adaptive, base: np.ndarray) -> "Levels":
        """These levels dequantized with ``adaptive``'s steps over base image ``base``."""
        return dataclasses.replace(self, gains=adaptive.gains(base))

    def scale(self, b0: int, b1: int) -> np.ndarray:
        """Float32 steps of blocks b0..b1: [3, 64, b1 - b0], or [3, 64, 1] for all alike."""
        return _scale(self.class_steps(), self.gains, b0, b1)

    def band(self, b0: int, b1: int) -> np.ndarray:
        """Levels [3, 64, b1 - b0] (natural class order) of blocks b0..b1 as float32."""
        levels = np.zeros((CLASSES, b1 - b0), dtype=np.float32)
        for j, coded in enumerate(self.ordered):
            if coded is not None:
                levels[_ORDER_ROWS[j]] = coded[b0:b1]
        return levels.reshape(3, BLOCK * BLOCK, -1)


def decode(payload: bytes, base: np.ndarray, cells: np.ndarray, out: np.ndarray | None = None,
           version: int = TILTED_VERSION) -> np.ndarray:
    """Add the coded residual to ``base`` (uint8 [H, W, 3]); returns uint8 [H, W, 3],
    written into ``out`` when given (which may be ``base`` itself). ``version`` is the
    payload's layout (``decode_levels``): 3 and 10 read its ``Tilt``, 10 its near offsets."""
    return reconstruct(decode_levels(payload, base.shape[:2], cells, version), base, out)


def decode_levels(payload: bytes, size: tuple[int, int], cells: np.ndarray,
                  version: int = TILTED_VERSION) -> Levels:
    """The levels of a payload for an image of ``size`` (height, width) whose base has
    the activity ``cells``, in the layout of format ``version`` 2, 3 or 10; raises
    DetailError for a payload an encoder did not write."""
    if version not in (2, TILTED_VERSION, NEAR_VERSION):
        raise ValueError(f"detail layers are in format versions 2, 3 and 10, not {version!r}")
    tilted, near = version != 2, version == NEAR_VERSION
    start = _HEAD.size + (_TILT.size if tilted else 0)
    dims = (CONTEXTS, NEAR_BUCKETS) if near else (CONTEXTS,)
    head = start + sum(dims) + CLASSES
    if len(payload) < head or (len(payload) - head) % 4:
        raise DetailError(f"detail payload of {len(payload)} bytes is malformed")
    (code,) = _HEAD.unpack_from(payload)
    if code < 16 * MIN_STEP:
        raise DetailError(f"detail step {code / 16} is below {MIN_STEP}")
    tilt = None
    if tilted:
        try:
            tilt = Tilt(*_TILT.unpack_from(payload, _HEAD.size))
        except ValueError as exc:
            raise DetailError(f"detail payload: {exc}") from None
    raw = np.frombuffer(payload, np.int8, sum(dims), start).astype(np.int64)
    offsets = _combined(np.split(raw, np.cumsum(dims)[:-1]))
    byte = payload[head - CLASSES:head]
    ordered = [None] * CLASSES          # int16 levels per coded class; None: all zero
    if not any(byte):
        # Every class is zero: no work in proportion to the pixels is owed to a payload
        # that codes nothing (the coder's words of no symbols).
        if payload[head:] != _code_levels(None, (), byte, offsets):
            raise DetailError("detail payload is not what the encoder writes (trailing data?)")
        return Levels(code, tilt, ordered)
    words = np.frombuffer(payload[head:], dtype="<u4").astype(np.uint32)
    h, w = size
    activity_ctx = _block_activity(cells, h, w)
    grid = (-(-h // BLOCK), -(-w // BLOCK)) if near else None
    # The symbols are coded again as they are decoded: a payload is valid only when they
    # give back exactly its words (no junk after them, no other trailing bits).
    check = constriction.stream.queue.RangeEncoder()
    try:
        dec = constriction.stream.queue.RangeDecoder(words)
        for j, ctx in _contexts(lambda j: ordered[j], activity_ctx, grid, byte):     # the coded classes
            levels = np.zeros(activity_ctx.size, dtype=np.int16)
            for k, blocks in _groups(ctx):
                model = _table_model(byte[j], offsets[k])
                symbols = dec.decode(model, blocks.size)
                check.encode(symbols, model)
                levels[blocks] = symbols - MAX_LEVEL
            ordered[j] = levels
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # constriction signals bad data with a PanicException
        raise DetailError(f"detail payload does not decode: {exc}") from None
    if check.get_compressed().astype("<u4").tobytes() != payload[head:]:
        raise DetailError("detail payload is not what the encoder writes (trailing data?)")
    return Levels(code, tilt, ordered)


def reconstruct(levels: Levels, base: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``base`` plus the residual of ``levels``, rounded and clipped to uint8 (into
    ``out`` when given, which may be ``base`` itself)."""
    out = np.empty_like(base) if out is None else out
    if all(coded is None for coded in levels.ordered):
        if out is not base:
            out[...] = base
        return out
    h, w = base.shape[:2]
    bw = -(-w // BLOCK)
    for r0, r1 in _bands(h):
        b0, b1 = r0 // BLOCK * bw, -(-r1 // BLOCK) * bw
        residual = _inverse(levels.band(b0, b1) * levels.scale(b0, b1), r1 - r0, w)
        out[r0:r1] = np.clip(np.round(base[r0:r1] + residual), 0, 255).astype(np.uint8)
    return out


def constrain(filtered: np.ndarray, base: np.ndarray, levels: Levels, intervals: Intervals,
              out: np.ndarray | None = None) -> np.ndarray:
    """The post-filter's output ``filtered`` with every DCT coefficient of its residual
    against ``base`` clamped to the interval its decoded level allows (``Intervals``);
    uint8 [H, W, 3], into ``out`` when given (which may be ``filtered``)."""
    out = np.empty_like(filtered) if out is None else out
    h, w = base.shape[:2]
    bw = -(-w // BLOCK)
    zero, below, above = (np.float32(v / 64) for v in (intervals.zero, intervals.below, intervals.above))
    for r0, r1 in _bands(h):
        b0, b1 = r0 // BLOCK * bw, -(-r1 // BLOCK) * bw
        scale = levels.scale(b0, b1)
        level = levels.band(b0, b1)
        size = np.abs(level)
        upper = np.where(size == 0, zero, size + above)          # on the magnitude
        lower = np.where(size == 0, -zero, size - below)
        low, high = np.where(level < 0, -upper, lower), np.where(level < 0, -lower, upper)
        base_band = base[r0:r1].astype(np.float32)
        coefs = np.clip(_forward(filtered[r0:r1].astype(np.float32) - base_band) / scale, low, high)
        out[r0:r1] = np.clip(np.round(base_band + _inverse(coefs * scale, r1 - r0, w)), 0, 255).astype(np.uint8)
    return out
