"""Range coding of RVQ indices with constriction, one independent payload per stage.

A stage payload is the range coder's 32-bit words, little-endian. Stages are coded
independently (each starts a fresh coder), so dropping trailing stages leaves a
valid stream: this is what makes files progressive.
"""
from __future__ import annotations

import constriction
import numpy as np

from .context import context


class PayloadError(ValueError):
    """A stage payload that does not decode."""


_FAMILY = constriction.stream.model.Categorical(perfect=False)


def _probabilities(freqs_sg: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    return freqs_sg[ctx.ravel()].astype(np.float64)


def _encode(freqs_s: np.ndarray, current: np.ndarray, previous: np.ndarray | None) -> bytes:
    enc = constriction.stream.queue.RangeEncoder()
    for g in range(current.shape[0]):
        ctx = context(previous, current, g)
        enc.encode(current[g].ravel().astype(np.int32), _FAMILY, _probabilities(freqs_s[g], ctx))
    return enc.get_compressed().astype("<u4").tobytes()


def encode_stage(freqs: np.ndarray, indices: np.ndarray, s: int) -> bytes:
    """freqs: [S, G, C, K] int tables; indices: [n, G, h, w] (stages <= s used)."""
    return _encode(freqs[s], indices[s], indices[s - 1] if s else None)


def decode_stage(freqs: np.ndarray, payload: bytes, previous: np.ndarray | None,
                 s: int, groups: int, height: int, width: int) -> np.ndarray:
    """Inverse of encode_stage: returns indices [G, h, w] of stage s."""
    if len(payload) % 4:
        raise PayloadError(f"stage {s + 1} payload is {len(payload)} bytes, not a whole number of words")
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    out = np.zeros((groups, height, width), dtype=np.int16)      # codes < 2**15: 2 bytes per index
    try:
        dec = constriction.stream.queue.RangeDecoder(words)
        for g in range(groups):
            ctx = context(previous, out, g)
            out[g] = dec.decode(_FAMILY, _probabilities(freqs[s, g], ctx)).reshape(height, width)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # constriction signals bad data with a PanicException
        raise PayloadError(f"stage {s + 1} payload does not decode: {exc}") from None
    # Only the encoder's own bytes are accepted: a payload with junk words after the
    # symbols, or with other trailing bits, decodes to symbols whose encoding differs.
    if _encode(freqs[s], out, previous) != payload:
        raise PayloadError(f"stage {s + 1} payload is not what the encoder writes (trailing data?)")
    return out
