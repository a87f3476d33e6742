"""The Pillow plugin: explicit registration, cheap open, closed files, Pillow's errors."""
import os
import warnings

import numpy as np
import pytest
from PIL import Image

import aecodec
from aecodec.format import parse


@pytest.fixture
def aec_path(tmp_path, photo_crop):
    path = tmp_path / "photo.aec"
    path.write_bytes(aecodec.encode(photo_crop, 3))
    return path


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_no_file_descriptor_leak(aec_path):
    Image.open(aec_path).load()
    before = _open_fds()
    for _ in range(300):
        im = Image.open(aec_path)
        im.load()
    assert _open_fds() <= before + 2


def test_open_reads_the_header_only(tmp_path, aec_path):
    data = bytearray(aec_path.read_bytes())
    data[-1] ^= 0xFF                                  # breaks the CRC, not the header
    broken = tmp_path / "broken.aec"
    broken.write_bytes(bytes(data))
    im = Image.open(broken)                           # identified and sized without the payload
    assert im.format == "AEC" and im.size == (96, 64) and im.info["stages"] == 3
    with pytest.raises(OSError, match="checksum"):
        im.load()


def test_model_mismatch_raises_oserror(tmp_path, aec_path):
    from aecodec.format import AecFile
    f = parse(aec_path.read_bytes())
    other = AecFile(f.mode, b"\x00" * 8, f.width, f.height, f.stages, f.alpha, f.detail)
    path = tmp_path / "other.aec"
    path.write_bytes(other.to_bytes())
    with pytest.raises(OSError, match="model"):
        Image.open(path).load()


def test_max_image_pixels_applies_to_the_declared_size(aec_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(aec_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 96 * 64 - 1)
        with pytest.raises(Image.DecompressionBombWarning):
            Image.open(aec_path)


def test_register_options_and_cpu_default(tmp_path, photo_crop):
    from aecodec.card import default_card, ladder_of
    from aecodec.pillow_plugin import PluginOptions
    assert PluginOptions().device == "cpu"          # a GPU only when asked for
    try:
        aecodec.register_pillow(quality=1)
        Image.fromarray(photo_crop).save(tmp_path / "a.aec")
        assert aecodec.info((tmp_path / "a.aec").read_bytes())["quality"] == 1
    finally:
        aecodec.register_pillow()
    Image.fromarray(photo_crop).save(tmp_path / "b.aec")
    default_stages = ladder_of(default_card()["config"])[aecodec.DEFAULT_QUALITY - 1].stages
    assert parse((tmp_path / "b.aec").read_bytes()).stage_count == default_stages
    assert aecodec.info((tmp_path / "b.aec").read_bytes())["quality"] == aecodec.DEFAULT_QUALITY


def test_round_trip_through_pillow(tmp_path, photo_crop):
    Image.fromarray(photo_crop).save(tmp_path / "c.aec", quality=5)
    with Image.open(tmp_path / "c.aec") as im:
        assert im.mode == "RGB" and np.asarray(im).shape == (64, 96, 3)
