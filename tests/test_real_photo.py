"""Whole Kodak photos through the shipped model (skipped without ../shared)."""
import numpy as np
from PIL import Image

import aecodec
from conftest import psnr


def test_kodak_photo_round_trip(codec, kodak_dir):
    with Image.open(kodak_dir / "kodim05.png") as im:
        original = np.asarray(im.convert("RGB"))
    data = codec.encode(original, aecodec.DEFAULT_QUALITY)
    decoded = codec.decode(data)
    assert decoded.size == (768, 512)
    bpp = len(data) * 8 / (768 * 512)
    assert bpp < 1.5
    assert psnr(original, decoded) > 24.0      # a hard image; the README gives measured numbers


def test_prefixes_decode_with_rising_quality(codec, kodak_dir):
    with Image.open(kodak_dir / "kodim23.png") as im:
        original = np.asarray(im.convert("RGB"))[:256, :256]
    full = codec.encode(original, max(aecodec.QUALITIES))
    scores = [psnr(original, codec.decode(aecodec.truncate(full, int(len(full) * f)))) for f in (0.3, 0.6, 1.0)]
    assert scores[0] < scores[1] < scores[2]
