"""Codecs under benchmark, one small class each: encode RGB uint8 -> bytes -> RGB uint8.

Each is named and lists its own quality settings, like CompressAI's benchmark codec
classes; the runner treats them all alike.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, features


class BenchCodec:
    name: str
    description: str
    qualities: tuple

    def available(self) -> bool:
        return True

    def encode(self, rgb: np.ndarray, quality) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> np.ndarray:
        raise NotImplementedError


class AecBench(BenchCodec):
    name = "aecodec"

    def __init__(self, codec=None):
        from ..codec import Codec
        self.codec = codec if codec is not None else Codec(device="cpu")
        self.qualities = self.codec.qualities
        self.description = f"aecodec, model {self.codec.model_id}, quality ladder {self.codec.ladder} (RVQ stages, detail step)"

    def encode(self, rgb, quality):
        return self.codec.encode(rgb, quality)

    def decode(self, data):
        return self.codec.decode_pixels(data).rgb


class PillowBench(BenchCodec):
    """JPEG (default 4:2:0), WebP and AVIF through Pillow with default settings."""

    _feature = {"JPEG": "jpg", "WEBP": "webp", "AVIF": "avif"}

    def __init__(self, fmt: str, qualities=tuple(range(5, 96, 5))):
        self.fmt = fmt
        self.name = fmt.lower()
        self.description = f"{fmt} through Pillow, default settings"
        self.qualities = tuple(qualities)

    def available(self) -> bool:
        return bool(features.check(self._feature[self.fmt]))

    def encode(self, rgb, quality):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format=self.fmt, quality=int(quality))
        return buf.getvalue()

    def decode(self, data):
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))


class JxlBench(BenchCodec):
    """JPEG XL through imagecodecs (libjxl), effort 7, quality by Butteraugli distance."""

    name = "jpegxl"
    description = "JPEG XL through imagecodecs, effort 7"
    qualities = (12.0, 8.0, 6.0, 4.5, 3.5, 2.5, 1.8, 1.3, 1.0, 0.7, 0.5)

    def available(self) -> bool:
        try:
            import imagecodecs
            return bool(imagecodecs.JPEGXL.available)
        except (ImportError, AttributeError):
            return False

    def encode(self, rgb, quality):
        import imagecodecs
        return imagecodecs.jpegxl_encode(rgb, effort=7, distance=float(quality))

    def decode(self, data):
        import imagecodecs
        return np.asarray(imagecodecs.jpegxl_decode(data))[:, :, :3]


def default_codecs(names=None, weights=None) -> list[BenchCodec]:
    """``weights``: a weights folder for aecodec (a candidate model), else the shipped one."""
    from ..codec import Codec
    coarse = tuple(range(5, 96, 10))        # the anchor (JPEG) gets every 5, others every 10
    makers = {"aecodec": lambda: AecBench(Codec(weights, device="cpu")), "jpeg": lambda: PillowBench("JPEG"),
              "webp": lambda: PillowBench("WEBP", coarse), "avif": lambda: PillowBench("AVIF", coarse),
              "jpegxl": JxlBench}
    names = list(makers) if names is None else list(names)
    unknown = set(names) - set(makers)
    if unknown:
        raise ValueError(f"unknown codecs {sorted(unknown)}; choose from {sorted(makers)}")
    chosen = [makers[n]() for n in names]
    missing = [c.name for c in chosen if not c.available()]
    if missing:
        raise ValueError(f"codecs {missing} are not available here: JPEG XL needs imagecodecs "
                         f"(pip install \"aecodec[bench]\"), AVIF and WebP a Pillow built with them; "
                         f"or leave them out with --codecs")
    return chosen
