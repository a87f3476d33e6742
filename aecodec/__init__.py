"""aecodec: a learned lossy image codec (VQ-VAE + context-coded residual VQ).

    import aecodec
    data = aecodec.encode("photo.png", quality=aecodec.DEFAULT_QUALITY)
    image = aecodec.decode(data)           # a PIL image

Importing loads neither torch nor the weights; the model loads on the first encode or
decode. Pillow learns the .aec format through ``aecodec.register_pillow()``
(``import aecodec`` calls it once with the defaults, so ``Image.open("x.aec")`` works).
"""
from __future__ import annotations

import threading

from . import pillow_plugin
from .card import DEFAULT_QUALITY, default_qualities
from .errors import DeviceError, FormatError, InputError, WeightsError

__all__ = ["encode", "decode", "truncate", "info", "Codec", "QUALITIES", "DEFAULT_QUALITY",
           "FormatError", "InputError", "WeightsError", "DeviceError", "register_pillow",
           "__version__"]
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("aecodec")
except PackageNotFoundError:          # a source tree that was never installed
    __version__ = "0+unknown"

pillow_plugin.register()

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
    if name == "QUALITIES":            # the shipped model card's ladder, read on first use
        return default_qualities()
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


def info(data, weights=None) -> dict:
    """What an .aec file (bytes or a path) holds, from its header alone: size, mode,
    stages, detail layer, bytes, bpp, model id, format version and, when an installed
    model wrote it (the shipped ones, or those of the ``weights`` folder), the quality
    (None when a budget fitted it between two)."""
    from .inspect import describe
    return describe(data, weights)


def register_pillow(**options) -> None:
    """Register .aec with Pillow (open, save, extension, MIME). Options (``weights``,
    ``device``, ``quality``) set what the plugin uses; see ``pillow_plugin.register``."""
    pillow_plugin.register(**options)
