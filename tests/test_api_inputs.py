"""Bad arguments are refused up front with one clear ValueError (issue 16, class 5)."""
import io

import numpy as np
import pytest
from PIL import Image

import aecodec


@pytest.mark.parametrize("budget", ["100", 0, -1, True, 2.5, float("inf"), None])
def test_max_bytes_must_be_a_positive_integer(codec, photo_crop, budget):
    if budget is None:
        return
    with pytest.raises(ValueError, match="max_bytes"):
        codec.encode(photo_crop, max_bytes=budget)


@pytest.mark.parametrize("bpp", [float("inf"), float("nan"), 0, -1.0, "1", True])
def test_bpp_must_be_positive_and_finite(codec, photo_crop, bpp):
    with pytest.raises(ValueError, match="bpp"):
        codec.encode(photo_crop, bpp=bpp)


@pytest.mark.parametrize("tile", [0, -1, 2.5, True])
def test_tile_must_be_a_positive_integer(tile):
    from aecodec.codec import Codec
    with pytest.raises(ValueError, match="tile"):
        Codec(device="cpu", tile=tile)


def test_corrupt_image_is_an_input_error(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[:60])
    with pytest.raises(aecodec.InputError, match="cut.png"):
        aecodec.encode(path)


def test_pixel_limit_is_checked_before_decoding(tmp_path, monkeypatch):
    """A large PNG is refused from its header: Image.load is never reached."""
    from aecodec.codec import Codec
    path = tmp_path / "big.png"
    Image.new("L", (2000, 1000)).save(path)
    loaded = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: loaded.append(1) or real_load(self))
    with pytest.raises(aecodec.InputError, match="limit"):
        Codec(device="cpu", max_pixels=1_000_000).encode(path)
    assert not loaded


def test_default_limit_follows_pillow(monkeypatch):
    from aecodec.codec import FOLLOW_PILLOW, pixel_limit
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert pixel_limit(FOLLOW_PILLOW) == 2000
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert pixel_limit(FOLLOW_PILLOW) is None


@pytest.mark.parametrize("mode,make,check", [
    ("I", lambda: Image.fromarray(np.full((8, 8), 300, np.int32)), "ambiguous"),
])
def test_ambiguous_mode_i_is_refused(mode, make, check):
    with pytest.raises(aecodec.InputError, match=check):
        aecodec.encode(make())


def test_float_in_unit_range_and_trns_colour_key():
    f = Image.fromarray(np.full((16, 16), 0.8, np.float32))            # a [0, 1] float image
    out = np.asarray(aecodec.decode(aecodec.encode(f, 8)))
    assert abs(out.mean() - 204) < 6
    rgb = Image.new("RGB", (16, 16), (10, 20, 30))
    rgb.info["transparency"] = (10, 20, 30)                           # tRNS: that colour is clear
    out = aecodec.decode(aecodec.encode(rgb, 4))
    assert out.mode == "RGBA" and np.asarray(out)[:, :, 3].max() == 0
