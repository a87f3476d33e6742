"""Integer frequency tables: one row of K frequencies per (stage, group, context).

Fitted by counting indices on training images, then quantized to integers that sum
to at most 2**16 with every entry >= 1, so any index can be coded. The coder only
ever sees these integers (converted exactly to float64), never a float computed at
decode time.
"""
from __future__ import annotations

import numpy as np

from .context import NUM_CONTEXTS, context

TABLE_TOTAL = 1 << 16


class TableError(ValueError):
    """Frequency tables that would make the coder misbehave."""


def count_indices(counts: np.ndarray, indices: np.ndarray) -> None:
    """Accumulate symbol counts for one image. counts: [S, G, C, K]; indices: [n, G, h, w]."""
    for s in range(indices.shape[0]):
        prev = indices[s - 1] if s else None
        for g in range(indices.shape[1]):
            ctx = context(prev, indices[s], g)
            np.add.at(counts[s, g], (ctx.ravel(), indices[s, g].ravel()), 1)


def quantize_counts(counts: np.ndarray, prior: float = 0.5) -> np.ndarray:
    """Counts [S, G, C, K] -> int32 frequencies, each row >= 1 per entry and sum <= 2**16."""
    k = counts.shape[-1]
    p = (counts + prior) / (counts + prior).sum(-1, keepdims=True)
    freqs = np.floor(p * (TABLE_TOTAL - k)).astype(np.int64) + 1
    return freqs.astype(np.int32)


def validate_tables(freqs: np.ndarray, stages: int, groups: int, codes: int) -> None:
    want = (stages, groups, NUM_CONTEXTS, codes)
    if freqs.shape != want:
        raise TableError(f"entropy tables have shape {freqs.shape}, expected {want}")
    if freqs.min() < 1 or freqs.sum(-1).max() > TABLE_TOTAL:
        raise TableError("entropy tables hold a zero entry or a row over 2**16")


def min_bits_per_position(freqs: np.ndarray) -> np.ndarray:
    """[S]: the fewest bits any position can cost in each stage (all groups), whatever
    the contexts. A stage payload shorter than positions * this is not genuine, so the
    decoder can refuse it before doing work proportional to the declared size."""
    p_max = freqs.max(-1) / freqs.sum(-1)                    # [S, G, C]
    return (-np.log2(p_max)).min(-1).sum(-1)                 # [S]
