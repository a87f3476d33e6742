"""aecodec: a learned lossy image codec (VQ-VAE + context-coded residual VQ).

    import aecodec
    data = aecodec.encode("photo.png", quality=aecodec.DEFAULT_QUALITY)
    image = aecodec.decode(data)           # a PIL image

Importing registers the .aec format with Pillow (open, save, extension, MIME), so
``Image.open("x.aec")`` and ``img.save("x.aec")`` work after ``import aecodec``. That
is the one thing importing does: it adds four entries to Pillow's format tables and
loads no model (the weights load on the first encode or decode).
"""
from __future__ import annotations

import threading

from . import pillow_plugin
from .format import FormatError
from .imageio import InputError
from .weights import WeightsError

__all__ = ["encode", "decode", "truncate", "Codec", "QUALITIES", "DEFAULT_QUALITY",
           "FormatError", "InputError", "WeightsError", "register_pillow", "__version__"]
__version__ = "0.1.0"

pillow_plugin.register()

# Qualities 1-8 keep that many RVQ stages; 9-13 add the detail layer over a base of
# 7 or 8 stages (the shipped model card's ladder; tests check the two agree).
QUALITIES: tuple[int, ...] = tuple(range(1, 14))
DEFAULT_QUALITY = 6

_default_codec = None
_default_lock = threading.Lock()


def _codec():
    """The shared default Codec, loaded on first use (not at import)."""
    global _default_codec
    with _default_lock:
        if _default_codec is None:
            from .codec import Codec
            _default_codec = Codec()
        return _default_codec


def __getattr__(name):
    if name == "Codec":
        from .codec import Codec
        return Codec
    raise AttributeError(f"module 'aecodec' has no attribute {name!r}")


def encode(image, quality: int | None = None, *, max_bytes: int | None = None,
           bpp: float | None = None) -> bytes:
    """Compress a PIL image, a uint8/uint16 numpy array or an image path to .aec bytes.

    ``quality`` defaults to DEFAULT_QUALITY. With ``max_bytes`` (or ``bpp``) the result
    is the highest quality up to ``quality`` (default: the highest) whose file fits,
    with its detail step made as fine as the budget allows; the networks run once.
    """
    return _codec().encode(image, quality, max_bytes=max_bytes, bpp=bpp)


def decode(data: bytes, as_array: bool = False):
    """Decode .aec bytes to a PIL image (or a numpy array with ``as_array=True``)."""
    import numpy as np
    image = _codec().decode(data)
    return np.asarray(image) if as_array else image


def truncate(data: bytes, max_bytes: int) -> bytes:
    """The file if it fits in ``max_bytes``, else without its detail layer and with the
    whole stages that fit: a valid, coarser file."""
    from .format import fit, parse
    return fit(parse(data), max_bytes).to_bytes()


def register_pillow() -> None:
    """Register the .aec format with Pillow again (``import aecodec`` already did; this
    is for code that reset Pillow's registry). Idempotent."""
    pillow_plugin.register()
