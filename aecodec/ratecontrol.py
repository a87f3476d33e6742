"""Rate control: the best file within a byte budget. Pure (no torch, no images), so it
is tested with a fake ``build``.

The ladder gives a rung (stages, detail step, scale) per quality. ``fit`` takes the
highest quality whose file fits; then, when there is a next quality up, it spends
what is left on a detail layer: over the next quality's base at a step coarser than
the ladder's own (when that quality has a detail layer), or over this quality's base
at steps from ``FINEST_UNLADDERED_STEP`` up (when the next quality only adds stages).
The step is refined by bisection in log space between the fine and a coarse bound.
"""
from __future__ import annotations

from typing import Callable, Sequence

from .card import Rung

# The finest detail step tried over a base that has no detail layer in the ladder:
# finer steps than this cost more bits than the next ladder quality would. (It was 32
# with one step for every frequency; detail.TILT's steps spend as many bits at 22.)
FINEST_UNLADDERED_STEP = 22.0
BISECTION_STEPS = 6           # the step is within (coarse / fine) ** (1 / 64) of the best


def fit(ladder: Sequence[tuple], budget: int, build: Callable[..., object],
        size: Callable[[object], int], max_step: float):
    """The largest file ``build(stages, step, scale)`` makes within ``budget`` bytes
    (see the module doc; a rung without a scale has scale 1). Raises ValueError when
    even the first quality does not fit."""
    ladder = [Rung.of(rung) for rung in ladder]
    for q in range(len(ladder), 0, -1):
        best = build(*ladder[q - 1])
        best_size = size(best)
        if best_size <= budget:
            break
    else:
        raise ValueError(f"cannot fit the image in {budget} bytes: the first stage alone makes a "
                         f"{best_size}-byte file")
    if q == len(ladder):
        return best
    stages, fine, scale = ladder[q] if ladder[q][1] else (ladder[q - 1][0], FINEST_UNLADDERED_STEP,
                                                           ladder[q - 1][2])
    coarse = min(8 * fine, max_step)
    for _ in range(BISECTION_STEPS):
        step = (fine * coarse) ** 0.5
        candidate = build(stages, step, scale)
        candidate_size = size(candidate)
        if candidate_size <= budget:
            coarse = step
            if candidate_size > best_size:
                best, best_size = candidate, candidate_size
        else:
            fine = step
    return best
