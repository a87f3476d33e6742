"""Range coding of RVQ indices with constriction, one independent payload per stage.

A stage payload is the range coder's 32-bit words, little-endian. Stages are coded
independently (each starts a fresh coder), so dropping trailing stages leaves a
valid stream: this is what makes files progressive.
"""
from __future__ import annotations

import constriction
import numpy as np

from .context import (ZERO_GROUP_SET, checkerboard, context, nonzero_neighbours, previous_busy, second_half_term,
                      zero_context_before)
from .tables import TABLE_TOTAL


class PayloadError(ValueError):
    """A stage payload that does not decode."""


_FAMILY = constriction.stream.model.Categorical(perfect=False)


def _probabilities(freqs_sg: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    return freqs_sg[ctx.ravel()].astype(np.float64)


class _ZeroModel:
    """The version 11 rows of one stage: the 18-context row f with P(code 0) from the
    zero tables, [Z x (sum of f[1:]), (2**16 - Z) x f[1:]] (docs/FORMAT.md, "Zero
    tables"), in float64 on integers below 2**33, so exact on any machine."""

    def __init__(self, freqs_s: np.ndarray, zeros_s: np.ndarray, previous: np.ndarray | None, h: int, w: int):
        self.rows = freqs_s.astype(np.float64)                       # [G, C, K]
        self.rest = self.rows[:, :, 1:].sum(-1)                      # [G, C]
        self.zeros = zeros_s.astype(np.float64)                      # [G / set, Z]
        self.previous, self.busy = previous, previous_busy(previous)
        self.around = None if previous is None else nonzero_neighbours(previous)   # [G, h, w]
        second = checkerboard(h, w).ravel()
        self.first, self.second = np.flatnonzero(~second), np.flatnonzero(second)
        self.order = np.concatenate([self.first, self.second])      # one coder call codes both halves

    def before(self, current: np.ndarray, g: int) -> tuple[np.ndarray, np.ndarray]:
        """(18-context, zero context without the checkerboard term), flat, of group g."""
        around = None if self.around is None else self.around[g]
        return (context(self.previous, current, g, around).ravel(),
                zero_context_before(self.previous, current, g, self.busy, around).ravel())

    def probabilities(self, g: int, ctx: np.ndarray, zctx: np.ndarray) -> np.ndarray:
        zero = self.zeros[g // ZERO_GROUP_SET, zctx]
        rows = self.rows[g, ctx]
        rows[:, 1:] *= (TABLE_TOTAL - zero)[:, None]
        rows[:, 0] = zero * self.rest[g, ctx]
        return rows


def _encode(freqs_s: np.ndarray, current: np.ndarray, previous: np.ndarray | None,
            zeros_s: np.ndarray | None = None) -> bytes:
    enc = constriction.stream.queue.RangeEncoder()
    model = None if zeros_s is None else _ZeroModel(freqs_s, zeros_s, previous, *current.shape[1:])
    for g in range(current.shape[0]):
        symbols = current[g].ravel().astype(np.int32)
        if model is None:
            enc.encode(symbols, _FAMILY, _probabilities(freqs_s[g], context(previous, current, g)))
            continue
        ctx, zctx = model.before(current, g)
        zctx[model.second] += second_half_term(current[g]).ravel()[model.second]
        order = model.order
        enc.encode(symbols[order], _FAMILY, model.probabilities(g, ctx[order], zctx[order]))
    return enc.get_compressed().astype("<u4").tobytes()


def encode_stage(freqs: np.ndarray, indices: np.ndarray, s: int, zeros: np.ndarray | None = None) -> bytes:
    """freqs: [S, G, C, K] int tables; indices: [n, G, h, w] (stages <= s used); with
    ``zeros`` ([D, G / set, Z], tables.quantize_zero_counts) the version 11 coding
    (the 18-context rows alone from stage D on)."""
    return _encode(freqs[s], indices[s], indices[s - 1] if s else None, _zeros_of(zeros, s))


def _zeros_of(zeros: np.ndarray | None, s: int) -> np.ndarray | None:
    return zeros[s] if zeros is not None and s < len(zeros) else None


def decode_stage(freqs: np.ndarray, payload: bytes, previous: np.ndarray | None,
                 s: int, groups: int, height: int, width: int, zeros: np.ndarray | None = None) -> np.ndarray:
    """Inverse of encode_stage: returns indices [G, h, w] of stage s."""
    if len(payload) % 4:
        raise PayloadError(f"stage {s + 1} payload is {len(payload)} bytes, not a whole number of words")
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    out = np.zeros((groups, height, width), dtype=np.int16)      # codes < 2**15: 2 bytes per index
    zeros_s = _zeros_of(zeros, s)
    model = None if zeros_s is None else _ZeroModel(freqs[s], zeros_s, previous, height, width)
    # Only the encoder's own bytes are accepted: each decoded group is coded again in
    # lockstep with the same probabilities, and a payload with junk words after the
    # symbols, or with other trailing bits, gives other words.
    again = constriction.stream.queue.RangeEncoder()

    def decoded(probabilities: np.ndarray) -> np.ndarray:
        symbols = dec.decode(_FAMILY, probabilities)
        again.encode(symbols, _FAMILY, probabilities)
        return symbols

    try:
        dec = constriction.stream.queue.RangeDecoder(words)
        for g in range(groups):
            if zeros_s is None:
                out[g] = decoded(_probabilities(freqs[s, g], context(previous, out, g))).reshape(height, width)
                continue
            ctx, zctx = model.before(out, g)
            first, second = model.first, model.second
            plane = out[g].reshape(-1)                           # a view: the second half sees the first
            plane[first] = decoded(model.probabilities(g, ctx[first], zctx[first]))
            term = second_half_term(out[g]).ravel()
            plane[second] = decoded(model.probabilities(g, ctx[second], zctx[second] + term[second]))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # constriction signals bad data with a PanicException
        raise PayloadError(f"stage {s + 1} payload does not decode: {exc}") from None
    if again.get_compressed().astype("<u4").tobytes() != payload:
        raise PayloadError(f"stage {s + 1} payload is not what the encoder writes (trailing data?)")
    return out
