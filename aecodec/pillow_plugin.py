"""Pillow plugin: Image.open / Image.save for .aec, registered explicitly.

    aecodec.register_pillow()                         # import aecodec does this once
    aecodec.register_pillow(device="cuda", quality=8) # opt in to other options
    Image.open("photo.aec"); img.save("photo.aec", quality=6)
    img.save("photo.aec", max_bytes=20_000)            # or bpp=0.5: the best file that fits

Defaults: the shipped weights on the **CPU** (a GPU only when asked for, so that the
same file gives the same pixels on every machine), quality ``DEFAULT_QUALITY``.
``Image.open`` reads and checks only the 27-byte header, so identifying a file is
cheap, and Pillow's ``Image.MAX_IMAGE_PIXELS`` bomb check applies to the size it
declares. The rest is read, verified and decoded on ``load()``, which closes the file
it opened. A file that does not decode raises ``OSError``, as Pillow's own decoders do.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from PIL import Image, ImageFile

from .card import DEFAULT_QUALITY
from .errors import DeviceError, FormatError, WeightsError
from .format import HEADER_SIZE, MAGIC, parse_header

FORMAT = "AEC"


@dataclass(frozen=True)
class PluginOptions:
    weights: str | None = None
    device: str = "cpu"
    quality: int = DEFAULT_QUALITY


class _Codecs:
    """One Codec per options, built on first use and shared by all images."""

    def __init__(self):
        self._lock = threading.Lock()
        self._codecs = {}

    def get(self, options: PluginOptions):
        with self._lock:
            key = (options.weights, options.device)
            if key not in self._codecs:
                from .codec import Codec
                self._codecs[key] = Codec(options.weights, device=options.device)
            return self._codecs[key]


_CODECS = _Codecs()


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == MAGIC


class AecImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "aecodec learned image codec"
    options = PluginOptions()

    def _open(self):
        try:
            header = parse_header(self.fp.read(HEADER_SIZE))
        except FormatError as exc:
            raise SyntaxError(f"not a valid .aec file: {exc}") from None
        self._mode = header.mode
        self._size = (header.width, header.height)
        self.info["stages"] = header.stage_count
        self.info["model_id"] = header.model_id.hex()
        self.tile = []
        self._pending = True

    def load(self):
        if getattr(self, "_pending", False):
            try:
                self.fp.seek(0)
                data = self.fp.read()
                decoded = _CODECS.get(self.options).decode(data)
            except (FormatError, WeightsError, DeviceError) as exc:
                raise OSError(f"cannot decode .aec file: {exc}") from None
            finally:
                self._pending = False
                if self._exclusive_fp:
                    self.fp.close()
                self.fp = None
            self.im = decoded.im
        return Image.Image.load(self)


def _saver(options: PluginOptions):
    def save(im: Image.Image, fp, filename) -> None:
        """``img.save(f, quality=6)``; ``max_bytes=`` or ``bpp=`` for a size budget."""
        info = im.encoderinfo
        if info.get("lossless"):
            raise ValueError("aecodec is a lossy codec: lossless=True is not supported (use PNG or WebP "
                             "lossless for that)")
        quality = info.get("quality")
        budgeted = info.get("max_bytes") is not None or info.get("bpp") is not None
        if quality is None and not budgeted:
            quality = options.quality
        codec = _CODECS.get(options)
        if quality is not None and quality not in codec.qualities:
            raise ValueError(f"quality for .aec is one of {min(codec.qualities)}..{max(codec.qualities)} "
                             f"(the model's quality ladder), not {quality!r}; there is no JPEG-style 0-100 "
                             f"scale, because its numbers would promise a likeness to JPEG qualities "
                             f"that aecodec's levels do not have")
        fp.write(codec.encode(im, quality, max_bytes=info.get("max_bytes"), bpp=info.get("bpp")))
    return save


def register(weights: str | None = None, device: str = "cpu", quality: int = DEFAULT_QUALITY) -> None:
    """Register .aec with Pillow; the options apply to every later open and save.
    Idempotent: registering again replaces the options."""
    options = PluginOptions(weights, device, quality)
    image_class = type("AecImageFile", (AecImageFile,), {"options": options})
    Image.register_open(FORMAT, image_class, _accept)
    Image.register_save(FORMAT, _saver(options))
    Image.register_extension(FORMAT, ".aec")
    Image.register_mime(FORMAT, "image/x-aec")
