"""Integer frequency tables: one row of K frequencies per (stage, group, context).

Fitted by counting indices on training images, then quantized to integers that sum
to at most 2**16 with every entry >= 1, so any index can be coded. The coder only
ever sees these integers (converted exactly to float64), never a float computed at
decode time.
"""
from __future__ import annotations

import numpy as np

from .context import NUM_CONTEXTS, ZERO_CONTEXTS, ZERO_GROUP_SET, checkerboard, context, zero_context

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


# -- zero tables (file format version 11) ----------------------------------------------
# One integer per (stage, set of ZERO_GROUP_SET groups, zero context): P(code 0) in units
# of 2**-16, in 1 .. 2**16 - 1, for the first D stages (D the tables' first dimension);
# later stages are coded with the 18-context rows alone. The row a symbol is coded with
# keeps the 18-context table's proportions among the other codes.

def count_zeros(counts: np.ndarray, indices: np.ndarray) -> None:
    """Accumulate (non-zero, zero) counts for one image, of the stages it and
    ``counts`` [D, G / set, Z, 2] both have."""
    second = checkerboard(*indices.shape[2:])
    for s in range(min(len(counts), indices.shape[0])):
        prev = indices[s - 1] if s else None
        for g in range(indices.shape[1]):
            ctx = zero_context(prev, indices[s], g, second)
            np.add.at(counts[s, g // ZERO_GROUP_SET], (ctx.ravel(), (indices[s, g] == 0).ravel().astype(np.int64)), 1)


def quantize_zero_counts(counts: np.ndarray, prior: float = 0.5) -> np.ndarray:
    """Counts [S, G / set, Z, 2] -> uint16 P(code 0) x 2**16, within 1 .. 2**16 - 1."""
    p = (counts[..., 1] + prior) / (counts.sum(-1) + 2 * prior)
    return np.clip(np.round(p * TABLE_TOTAL), 1, TABLE_TOTAL - 1).astype(np.uint16)


def validate_zero_tables(zeros: np.ndarray, stages: int, groups: int) -> None:
    want = (-(-groups // ZERO_GROUP_SET), ZERO_CONTEXTS)
    if zeros.ndim != 3 or not 1 <= zeros.shape[0] <= stages or zeros.shape[1:] != want:
        raise TableError(f"zero tables have shape {zeros.shape}, expected (1..{stages}, {want[0]}, {want[1]})")
    if zeros.min() < 1 or zeros.max() >= TABLE_TOTAL:
        raise TableError("zero tables hold a probability of 0 or 1")


def min_bits_with_zeros(freqs: np.ndarray, zeros: np.ndarray) -> np.ndarray:
    """[S]: as ``min_bits_per_position`` for version 11 stages: in the stages the zero
    tables cover, no position costs less than the larger of its two zero-table
    probabilities allows."""
    z = zeros.astype(np.float64) / TABLE_TOTAL
    p_max = np.maximum(z, 1 - z)                                   # [D, sets, Z]
    per_group = (-np.log2(p_max)).min(-1)                          # [D, sets]
    out = min_bits_per_position(freqs).copy()
    out[:len(zeros)] = per_group[:, np.arange(freqs.shape[1]) // ZERO_GROUP_SET].sum(-1)
    return out
