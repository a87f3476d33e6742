"""Discrete coding contexts, derived identically by encoder and decoder.

Symbols are coded stage by stage, and within a stage group by group. The context of
an index at (stage s, group g, position p) uses only what the decoder already has:

- a: is the previous stage's index at p non-zero (a busy place stays busy);
- b: how many of groups g-1 and g-2 in this stage are non-zero at p (0..2);
- c: how many 4-neighbours of p in the previous stage (same group) are non-zero,
  bucketed as 0, 1-2, 3-4.

ctx = 9a + 3b + c, so NUM_CONTEXTS = 18. All integer arithmetic: bit-exact anywhere.
"""
from __future__ import annotations

import numpy as np

NUM_CONTEXTS = 18
_NEIGHBOUR_BUCKET = np.array([0, 1, 1, 2, 2], dtype=np.int64)


def nonzero_neighbours(plane: np.ndarray) -> np.ndarray:
    """How many of each position's 4 neighbours are non-zero, over the last two axes."""
    nz = (plane != 0).astype(np.int64)
    out = np.zeros_like(nz)
    out[..., 1:, :] += nz[..., :-1, :]
    out[..., :-1, :] += nz[..., 1:, :]
    out[..., :, 1:] += nz[..., :, :-1]
    out[..., :, :-1] += nz[..., :, 1:]
    return out


def context(previous_stage: np.ndarray | None, current_stage: np.ndarray, g: int,
            around: np.ndarray | None = None) -> np.ndarray:
    """Context plane [h, w] for group ``g``.

    previous_stage: indices [G, h, w] of stage s-1 (None for the first stage);
    current_stage: indices [G, h, w] of stage s, of which groups < g are known;
    around: ``nonzero_neighbours(previous_stage[g])``, when the caller has it.
    """
    h, w = current_stage.shape[1:]
    ctx = np.zeros((h, w), dtype=np.int64)
    if previous_stage is not None:
        ref = previous_stage[g]
        ctx += 9 * (ref != 0)
        ctx += _NEIGHBOUR_BUCKET[nonzero_neighbours(ref) if around is None else around]
    for back in (1, 2):
        if g - back >= 0:
            ctx += 3 * (current_stage[g - back] != 0)
    return ctx


# -- zero contexts (file format version 11) --------------------------------------------
# Most indices of the first stages are code 0, and whether an index is 0 is a quarter of
# a stage's bits. Version 11 takes P(code 0) from a richer context than the 18 above,
# and the rest of the row from the 18-context table (coder._ZeroModel). Each group's
# plane is coded as a checkerboard: the positions with (row + column) even first, then
# the others, which also see whether their 4 neighbours in the same plane are 0
# (TRAINING_LOG Part 28). Every term is a count of non-zero indices: bit-exact anywhere.
ZERO_GROUP_SET = 4                                  # groups sharing one zero table
_PREVIOUS_BUSY = np.array([1, 2, 4, 8, 16])         # edges: non-zero groups at p, previous stage
_EARLIER_BUSY = np.array([1, 2, 3, 5, 8])           # edges: non-zero groups < g at p, this stage
ZERO_CONTEXTS = 2 * 5 * 6 * 6 * 2 * 6               # a, neighbours, previous, earlier, g-1, phase


def checkerboard(h: int, w: int) -> np.ndarray:
    """[h, w] bool: the positions coded second in a version 11 plane ((row + column) odd)."""
    return (np.add.outer(np.arange(h), np.arange(w)) & 1).astype(bool)


def previous_busy(previous_stage: np.ndarray | None) -> np.ndarray | None:
    """Per position of a stage, its bucket of non-zero groups in ``previous_stage`` (the
    part of every group's zero context that one stage shares)."""
    return None if previous_stage is None else np.digitize((previous_stage != 0).sum(0), _PREVIOUS_BUSY)


def zero_context_before(previous_stage: np.ndarray | None, current_stage: np.ndarray, g: int,
                        busy: np.ndarray | None = None, around: np.ndarray | None = None) -> np.ndarray:
    """``zero_context`` without its checkerboard term (what both halves share). ``busy``
    is ``previous_busy(previous_stage)`` and ``around`` group g's non-zero neighbours in
    ``previous_stage``, when the caller has them."""
    h, w = current_stage.shape[1:]
    if previous_stage is not None:
        same = (previous_stage[g] != 0).astype(np.int64)
        around = nonzero_neighbours(previous_stage[g]) if around is None else around
        busy = previous_busy(previous_stage) if busy is None else busy
    else:
        same = around = busy = np.zeros((h, w), dtype=np.int64)
    if g:
        earlier_nonzero = current_stage[:g] != 0
        earlier = np.digitize(earlier_nonzero.sum(0), _EARLIER_BUSY)
        last = earlier_nonzero[-1].astype(np.int64)
    else:
        earlier = last = np.zeros((h, w), dtype=np.int64)
    return ((((same * 5 + around) * 6 + busy) * 6 + earlier) * 2 + last) * 6


def second_half_term(plane: np.ndarray) -> np.ndarray:
    """The checkerboard term of a second-half position: 1 + its non-zero 4-neighbours in
    its own plane (all in the first half)."""
    return 1 + nonzero_neighbours(plane)


def zero_context(previous_stage: np.ndarray | None, current_stage: np.ndarray, g: int,
                 second: np.ndarray) -> np.ndarray:
    """Zero-context plane [h, w] for group ``g``, in 0 .. ZERO_CONTEXTS - 1.

    previous_stage / current_stage as for ``context``; in group ``g`` of current_stage
    the first checkerboard half is known when ``second`` (``checkerboard``) is used:
    second-half positions count their non-zero 4-neighbours there (+1), first-half ones 0.
    """
    return zero_context_before(previous_stage, current_stage, g) + np.where(
        second, second_half_term(current_stage[g]), 0)
