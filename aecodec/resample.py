"""Exact resampling for files coded at a reduced size (format version 7).

At the lowest qualities a photo coded at 1/1.5 or 1/2 of its size and scaled back up
keeps more than the same bits spent at full size (TRAINING_LOG Part 23). The scaling
up is part of the format, so it is integer arithmetic only: a separable Keys cubic
(a = -1/2, the kernel of Pillow's BICUBIC) whose taps are exact rationals rounded to
14 fractional bits, with no rounding between the two passes. Every machine makes the
same pixels from the same coded image.

The encoder's scaling down is its own choice (no decoder depends on it).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

TAP_BITS = 14
MAX_SCALE = 4.0                  # the most a ladder rung may scale a photo down
_ONE = 1 << TAP_BITS
_ROWS = 256                      # output rows per chunk of the vertical pass (bounds memory)


@lru_cache(maxsize=64)
def taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """(source index [dst, 4], integer weight [dst, 4] summing to 2^14 per row) that
    map ``src`` samples onto ``dst``, pixel centres aligned (as Pillow and PyTorch's
    ``align_corners=False``), edges replicated."""
    if not (1 <= src and 1 <= dst):
        raise ValueError(f"sizes must be positive, not {src} -> {dst}")
    index = np.empty((dst, 4), np.int64)
    weight = np.empty((dst, 4), np.int64)
    d = 2 * dst
    d3 = d ** 3
    for x in range(dst):
        # source position ((2x + 1) src - dst) / (2 dst) = i0 + n / d, 0 <= n < d
        num = (2 * x + 1) * src - dst
        i0, n = divmod(num, d)
        exact = (-n ** 3 + 2 * n * n * d - n * d * d,          # the Keys cubic at t = n / d,
                 3 * n ** 3 - 5 * n * n * d + 2 * d3,          # times 2 d^3 (they sum to 2 d^3)
                 -3 * n ** 3 + 4 * n * n * d + n * d * d,
                 n ** 3 - n * n * d)
        w = [(e * 2 * _ONE + 2 * d3) // (4 * d3) for e in exact]   # round half up
        w[1 if w[1] >= w[2] else 2] += _ONE - sum(w)
        weight[x] = w
        index[x] = [min(max(i0 + k, 0), src - 1) for k in (-1, 0, 1, 2)]
    index.flags.writeable = weight.flags.writeable = False
    return index, weight


def upscale(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 [h, w, c] -> uint8 [height, width, c], exactly (integers only)."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    cols, col_w = taps(w, width)
    rows, row_w = taps(h, height)
    src = image.astype(np.int32)
    wide = np.zeros((h, width) + image.shape[2:], np.int32)      # scale 2^14, not rounded (|x| < 2^23)
    extra = (None,) * (image.ndim - 2)
    for k in range(4):
        wide += col_w[(slice(None), k) + extra].astype(np.int32) * src[:, cols[:, k]]
    out = np.empty((height, width) + image.shape[2:], np.uint8)
    half = 1 << (2 * TAP_BITS - 1)
    for y in range(0, height, _ROWS):
        part = slice(y, min(y + _ROWS, height))
        acc = np.zeros((part.stop - y, width) + image.shape[2:], np.int64)
        for k in range(4):
            acc += row_w[(part, k) + (None,) * (image.ndim - 1)] * wide[rows[part, k]]
        out[part] = np.clip((acc + half) >> (2 * TAP_BITS), 0, 255)
    return out


def scale_down(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """The image the encoder codes for a photo at ``height`` x ``width``: Pillow's
    Lanczos filter. (The least-squares inverse of ``upscale`` is sharper and closer
    to the photo after scaling up, but costs more bits than it saves once coded:
    TRAINING_LOG Part 23.)"""
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.LANCZOS))
