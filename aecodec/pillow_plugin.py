"""Pillow plugin: Image.open / Image.save for .aec.

``import aecodec`` registers it (the package's __init__ calls ``register``);
``aecodec.register_pillow()`` registers it again after Pillow's tables were reset.

    Image.open("photo.aec"); img.save("photo.aec", quality=6)
    img.save("photo.aec", max_bytes=20_000)      # or bpp=0.5: the best file that fits

Decoding runs the model when the image is loaded, through the public API.
"""
from __future__ import annotations

from PIL import Image, ImageFile

from .format import MAGIC, FormatError, parse

FORMAT = "AEC"


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == MAGIC


class AecImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "aecodec learned image codec"

    def _open(self):
        data = self.fp.read()
        try:
            header = parse(data)
        except FormatError as exc:
            raise SyntaxError(f"not a valid .aec file: {exc}") from None
        self._data = data
        self._mode = header.mode
        self._size = (header.width, header.height)
        self.info["stages"] = header.stage_count
        self.info["detail"] = bool(header.detail)
        self.tile = []

    def load(self):
        if self._data is not None:
            import aecodec
            decoded = aecodec.decode(self._data)
            self.im = decoded.im
            self._data = None
        return Image.Image.load(self)


def _save(im: Image.Image, fp, filename) -> None:
    """``img.save(f, quality=6)``; ``max_bytes=`` or ``bpp=`` for a size budget."""
    import aecodec
    info = im.encoderinfo
    fp.write(aecodec.encode(im, info.get("quality"), max_bytes=info.get("max_bytes"), bpp=info.get("bpp")))


def register() -> None:
    Image.register_open(FORMAT, AecImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".aec")
    Image.register_mime(FORMAT, "image/x-aec")
