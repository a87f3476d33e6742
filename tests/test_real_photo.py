"""Whole photos through the shipped model: scikit-image's bundled samples always, and
Kodak where ../shared is beside the checkout (skipped with a reason otherwise)."""
import numpy as np
import pytest
from PIL import Image

import aecodec
from conftest import psnr, sample_photo


def _round_trip(codec, original, min_psnr):
    data = codec.encode(original, aecodec.DEFAULT_QUALITY)
    decoded = codec.decode(data)
    assert decoded.size == (original.shape[1], original.shape[0])
    assert len(data) * 8 / (original.shape[0] * original.shape[1]) < 1.5
    assert psnr(original, decoded) > min_psnr     # the README gives measured numbers


@pytest.mark.parametrize("name", ["coffee", "chelsea"])
def test_sample_photo_round_trip(codec, name):
    _round_trip(codec, sample_photo(name), 26.0)


def test_kodak_photo_round_trip(codec, kodak_dir):
    with Image.open(kodak_dir / "kodim05.png") as im:
        _round_trip(codec, np.asarray(im.convert("RGB")), 24.0)      # a hard image


def test_prefixes_decode_with_rising_quality(codec):
    original = sample_photo("coffee")[:256, :256]
    full = codec.encode(original, max(aecodec.QUALITIES))
    prefixes = [full]
    for _ in range(3):           # each one byte short of the last: detail layer, then stages go
        prefixes.insert(0, aecodec.truncate(prefixes[0], len(prefixes[0]) - 1))
    scores = [psnr(original, codec.decode(data)) for data in prefixes]
    assert scores == sorted(set(scores))
