"""Input normalisation: whatever people hand us -> 8-bit RGB pixels plus a mode.

The codec itself only sees HxWx3 uint8. The mode ("L", "RGB", "LA", "RGBA") records
what the caller gave, so grayscale comes back grayscale and alpha comes back too.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


# The file suffixes taken as images when a folder is given (CLI, bench, training).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm",
                            ".pgm", ".pnm", ".tga", ".avif", ".jxl", ".qoi"})


def list_images(folder, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (and its subfolders with ``recursive``), sorted."""
    found = Path(folder).rglob("*") if recursive else Path(folder).glob("*")
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


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


def to_srgb(im: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile: the pixels become sRGB, which is what aecodec stores
    and what a viewer assumes of a file without a profile. Without this, a wide-gamut
    (Display P3, Adobe RGB) photo would silently change colour. Colours outside sRGB
    are clipped; grayscale profiles are left alone."""
    icc = im.info.get("icc_profile")
    if not icc or im.mode not in ("RGB", "RGBA", "CMYK"):
        return im
    import io
    from PIL import ImageCms
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"),
                                              renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode=out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        raise InputError(f"the image's ICC colour profile cannot be applied: {exc}") from None
    converted.info = {k: v for k, v in im.info.items() if k != "icc_profile"}
    return converted


def from_pil(im: Image.Image) -> Pixels:
    im = to_srgb(ImageOps.exif_transpose(im))
    mode = im.mode
    if mode.startswith("I;16"):                # 16-bit files (PNG, TIFF): scaled to 8 bits
        return from_array(np.asarray(im.convert("I")).astype(np.uint16))
    if mode == "I":
        # 32-bit integers carry no bit depth: guessing 16-bit from one bright pixel
        # turned whole images nearly black, so only the 8-bit range is taken as is.
        a = np.asarray(im)
        lo, hi = int(a.min(initial=0)), int(a.max(initial=0))
        if lo < 0 or hi > 255:
            raise InputError(f"mode I image with values from {lo} to {hi}: its bit depth is ambiguous; "
                             f"convert it to 8-bit (L) or 16-bit (I;16) first")
        return from_array(a.astype(np.uint8))
    if mode == "F":
        # float images: [0, 1] by the usual convention (TIFF, EXR), else [0, 255]
        a = np.asarray(im, dtype=np.float32)
        if not np.isfinite(a).all():
            raise InputError("image holds NaN or infinite values")
        return from_array(a if a.size and a.min() >= 0 and a.max() <= 1 else np.clip(a, 0, 255) / 255.0)
    if mode in ("1", "L") and "transparency" in im.info:   # tRNS colour key
        return from_array(np.asarray(im.convert("LA")))
    if mode in ("1", "L"):
        return from_array(np.asarray(im.convert("L")))
    if mode in ("LA", "La"):
        return from_array(np.asarray(im.convert("LA")))
    has_alpha = mode in ("RGBA", "RGBa", "PA") or (mode in ("P", "RGB") and "transparency" in im.info)
    if has_alpha:
        return from_array(np.asarray(im.convert("RGBA")))
    return from_array(np.asarray(im.convert("RGB")))


def _check_size(width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise InputError(f"image of {width}x{height} exceeds the limit of {max_pixels} pixels")


def load(image, max_pixels: int | None = None) -> Pixels:
    """Accept a PIL image, a numpy array, a path or a binary file object of any image
    Pillow reads. A file's size is checked against ``max_pixels`` from its header,
    before its pixels are decoded."""
    if isinstance(image, Pixels):
        px = image
    elif isinstance(image, Image.Image):
        _check_size(image.width, image.height, max_pixels)
        px = from_pil(image)
    elif isinstance(image, np.ndarray):
        px = from_array(image)
    elif isinstance(image, (str, Path)) or hasattr(image, "read"):
        if isinstance(image, (str, Path)) and not Path(image).is_file():
            raise InputError(f"no such image file: {image}")
        name = str(image) if isinstance(image, (str, Path)) else "input"
        try:
            with Image.open(image) as im:
                _check_size(im.width, im.height, max_pixels)
                im.seek(0)           # animated images: the first frame
                im.load()
                return from_pil(im)
        except InputError as exc:
            raise InputError(f"{name}: {exc}") from None
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
            raise InputError(f"cannot read {name} as an image: {' '.join(str(exc).split())}") from None
    else:
        raise InputError(f"cannot encode a {type(image).__name__}; give a PIL image, a numpy array or a path")
    _check_size(px.width, px.height, max_pixels)
    return px


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
