"""The alpha plane: kept losslessly, as a deflate stream beside the lossy colour.

Only the encoder's own kind of stream is accepted: exactly width*height bytes that
end the stream, with nothing after its end (docs/FORMAT.md, reading rules).
"""
from __future__ import annotations

import zlib

import numpy as np

from .format import FormatError


def encode(alpha: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(alpha, dtype=np.uint8).tobytes(), 9)


def decode(data: bytes, width: int, height: int) -> np.ndarray:
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(data, width * height + 1)      # never more than one byte too many
    except zlib.error as exc:
        raise FormatError(f"alpha plane does not decompress: {exc}") from None
    if len(raw) != width * height:
        raise FormatError("alpha plane has the wrong size")
    if not inflate.eof:
        raise FormatError("alpha plane stream does not end")
    if inflate.unused_data or inflate.unconsumed_tail:
        raise FormatError("alpha plane stream has trailing data")
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width)
