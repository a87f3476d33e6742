"""Input normalisation: whatever people hand us -> 8-bit RGB pixels plus a mode.

The codec itself only sees HxWx3 uint8. The mode ("L", "RGB", "LA", "RGBA") records
what the caller gave, so grayscale comes back grayscale and alpha comes back too.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


class InputError(ValueError):
    """An image the codec cannot take."""


@dataclass
class Pixels:
    rgb: np.ndarray               # [H, W, 3] uint8
    mode: str                     # L, RGB, LA or RGBA
    alpha: np.ndarray | None      # [H, W] uint8 for LA / RGBA

    @property
    def width(self) -> int:
        return self.rgb.shape[1]

    @property
    def height(self) -> int:
        return self.rgb.shape[0]


def _to_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16:
        return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise InputError("image array holds NaN or infinite values")
        return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise InputError(f"unsupported array dtype {a.dtype} (use uint8, uint16 or float in [0, 1])")


def from_array(a: np.ndarray) -> Pixels:
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (2, 3, 4)):
        raise InputError(f"array of shape {a.shape} is not an image (expected HxW, HxWx3 or HxWx4)")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"image of shape {a.shape} has no pixels")
    a = _to_uint8(a)
    if a.ndim == 2:
        return Pixels(np.repeat(a[:, :, None], 3, axis=2), "L", None)
    if a.shape[2] == 2:
        return Pixels(np.repeat(a[:, :, :1], 3, axis=2), "LA", np.ascontiguousarray(a[:, :, 1]))
    if a.shape[2] == 3:
        return Pixels(np.ascontiguousarray(a), "RGB", None)
    return Pixels(np.ascontiguousarray(a[:, :, :3]), "RGBA", np.ascontiguousarray(a[:, :, 3]))


def from_pil(im: Image.Image) -> Pixels:
    im = ImageOps.exif_transpose(im)
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(im.convert("I")).astype(np.int64)
        peak = 65535 if a.max(initial=0) > 255 or mode.startswith("I;16") else 255
        return from_array((np.clip(a, 0, peak) * 255 // peak).astype(np.uint8))
    if mode == "F":
        return from_array(np.asarray(im, dtype=np.float32) / 255.0)
    if mode in ("1", "L"):
        return from_array(np.asarray(im.convert("L")))
    if mode in ("LA", "La"):
        return from_array(np.asarray(im.convert("LA")))
    has_alpha = mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in im.info)
    if has_alpha:
        return from_array(np.asarray(im.convert("RGBA")))
    return from_array(np.asarray(im.convert("RGB")))


def load(image) -> Pixels:
    """Accept a PIL image, a numpy array, or a path to any image Pillow reads."""
    if isinstance(image, Pixels):
        return image
    if isinstance(image, Image.Image):
        return from_pil(image)
    if isinstance(image, np.ndarray):
        return from_array(image)
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise InputError(f"no such image file: {path}")
        try:
            with Image.open(path) as im:
                im.seek(0)           # animated images: the first frame
                im.load()
                return from_pil(im)
        except (OSError, Image.DecompressionBombError, SyntaxError) as exc:
            raise InputError(f"cannot read {path} as an image: {exc}") from None
    raise InputError(f"cannot encode a {type(image).__name__}; give a PIL image, a numpy array or a path")


def to_pil(rgb: np.ndarray, mode: str, alpha: np.ndarray | None) -> Image.Image:
    if mode in ("L", "LA"):
        gray = Image.fromarray(np.asarray(Image.fromarray(rgb, "RGB").convert("L")), "L")
        if mode == "L":
            return gray
        return Image.merge("LA", (gray, Image.fromarray(alpha, "L")))
    im = Image.fromarray(rgb, "RGB")
    if mode == "RGB":
        return im
    return Image.merge("RGBA", (*im.split(), Image.fromarray(alpha, "L")))
