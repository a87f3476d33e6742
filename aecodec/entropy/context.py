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


def _nonzero_neighbours(plane: np.ndarray) -> np.ndarray:
    nz = np.pad((plane != 0).astype(np.int64), 1)
    return nz[:-2, 1:-1] + nz[2:, 1:-1] + nz[1:-1, :-2] + nz[1:-1, 2:]


def context(previous_stage: np.ndarray | None, current_stage: np.ndarray, g: int) -> np.ndarray:
    """Context plane [h, w] for group ``g``.

    previous_stage: indices [G, h, w] of stage s-1 (None for the first stage);
    current_stage: indices [G, h, w] of stage s, of which groups < g are known.
    """
    h, w = current_stage.shape[1:]
    ctx = np.zeros((h, w), dtype=np.int64)
    if previous_stage is not None:
        ref = previous_stage[g]
        ctx += 9 * (ref != 0)
        ctx += _NEIGHBOUR_BUCKET[_nonzero_neighbours(ref)]
    for back in (1, 2):
        if g - back >= 0:
            ctx += 3 * (current_stage[g - back] != 0)
    return ctx
