"""Files coded at a reduced size and scaled up (format version 7, aecodec/resample.py)."""
import hashlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

import aecodec
from aecodec import resample
from aecodec.card import coded_shape
from aecodec.format import parse
from conftest import psnr, sample_photo


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300))
def test_taps_sum_to_one_and_stay_inside(src, dst):
    index, weight = resample.taps(src, dst)
    assert index.shape == weight.shape == (dst, 4)
    assert (weight.sum(1) == 1 << resample.TAP_BITS).all()
    assert index.min() >= 0 and index.max() < src


def test_keys_cubic_taps_at_quarter_positions():
    """Twice the size puts every output a quarter sample off a source pixel, where the
    Keys cubic's weights are exact in 14 bits."""
    index, weight = resample.taps(4, 8)
    assert weight[2].tolist() == [-384, 3712, 14208, -1152]       # 3/4 past source pixel 0
    assert weight[3].tolist() == [-1152, 14208, 3712, -384]       # 1/4 past source pixel 1
    assert index[2].tolist() == [0, 0, 1, 2] and index[0].tolist() == [0, 0, 0, 1]


def test_upscale_golden_pixels():
    """The decoder's scaling up is part of the format: these pixels must never change."""
    rng = np.random.default_rng(7)
    small = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
    out = resample.upscale(small, 29, 40)
    assert out.shape == (29, 40, 3) and out.dtype == np.uint8
    assert hashlib.sha256(out.tobytes()).hexdigest()[:16] == "deae52fbe7c663bb"


def test_upscale_keeps_flat_and_linear_images():
    flat = np.full((5, 7, 3), 77, np.uint8)
    assert (resample.upscale(flat, 12, 15) == 77).all()
    ramp = np.tile((np.arange(16) * 10).astype(np.uint8)[None, :, None], (4, 1, 1))
    wide = resample.upscale(ramp, 4, 32)[0, 4:-4, 0].astype(float)        # away from the edges
    want = (np.arange(4, 28) + 0.5) / 2 - 0.5
    assert np.abs(wide - 10 * want).max() <= 0.5
    assert resample.upscale(ramp, 4, 16) is ramp                           # same size: untouched


def test_upscale_is_close_to_pillow_bicubic():
    """The same kernel as Pillow's BICUBIC, without Pillow's rounding between passes."""
    small = sample_photo("coffee")[::3, ::3][:100, :150]
    ours = resample.upscale(small, 160, 240).astype(int)
    pillow = np.asarray(Image.fromarray(small).resize((240, 160), Image.BICUBIC)).astype(int)
    assert np.abs(ours - pillow).mean() < 0.5


def test_lowest_quality_is_coded_smaller_and_shown_full_size(codec, photo_crop):
    rung = codec.ladder[0]
    assert rung.scale > 1, "the shipped ladder codes quality 1 at a reduced size"
    data = codec.encode(photo_crop, 1)
    f = parse(data)
    assert f.version == 11 and f.upfilter_id and (f.width, f.height) == (96, 64)
    assert (f.upfilter_id, f.upfilter_class) == (codec.weights.upfilter.filter_id, codec.weights.upfilter.class_for(*rung))
    assert f.coded_size == coded_shape(64, 96, rung.scale) != (64, 96)
    out = codec.decode(data)
    assert out.size == (96, 64) and out.mode == "RGB"
    info = aecodec.info(data)
    assert info["quality"] == 1 and (info["coded_height"], info["coded_width"]) == f.coded_size


@pytest.mark.parametrize("name", ["coffee", "chelsea", "astronaut"])
def test_a_smaller_coded_image_beats_one_stage_at_full_size(codec, name):
    """Why the lowest qualities are coded smaller (TRAINING_LOG Part 23): on real photos
    quality 1 is better than one full-size stage in 75% of its bytes, and quality 2
    is 1 dB better in about as many bytes."""
    photo = sample_photo(name)[:256, :384]
    full = codec.encode_at(photo, 1)
    q1, q2 = codec.encode(photo, 1), codec.encode(photo, 2)
    assert len(q1) < 0.75 * len(full) and len(q2) < 1.2 * len(full)
    score = psnr(photo, codec.decode_pixels(full).rgb)
    assert psnr(photo, codec.decode_pixels(q1).rgb) > score
    assert psnr(photo, codec.decode_pixels(q2).rgb) > score + 1


def test_scaled_rungs_keep_alpha_and_grey(codec, photo_crop):
    """The alpha plane is coded losslessly at the photo's own size; a grey photo stays grey."""
    alpha = np.random.default_rng(1).integers(0, 256, photo_crop.shape[:2], dtype=np.uint8)
    rgba = Image.fromarray(np.dstack([photo_crop, alpha]), "RGBA")
    out = codec.decode(codec.encode(rgba, 1))
    assert out.mode == "RGBA" and out.size == (96, 64)
    assert (np.asarray(out)[..., 3] == alpha).all()
    grey = Image.fromarray(photo_crop).convert("L")
    out = codec.decode(codec.encode(grey, 2))
    assert out.mode == "L" and out.size == (96, 64)
    assert psnr(np.asarray(grey), np.asarray(out)) > 20


def test_budgets_and_truncation_with_scaled_rungs(codec, photo_crop):
    """A budget a scaled quality fits gives that quality's file (or better); cutting a
    scaled file keeps its coded size and decodes at the photo's."""
    q2 = codec.encode(photo_crop, 2)
    fitted = codec.encode(photo_crop, max_bytes=len(q2))
    assert len(fitted) <= len(q2) and psnr(photo_crop, codec.decode_pixels(fitted).rgb) >= \
        psnr(photo_crop, codec.decode_pixels(q2).rgb)
    assert codec.encode(photo_crop, 2, max_bytes=len(q2)) == q2
    cut = aecodec.truncate(q2, len(q2) - 1)
    assert parse(cut).version == 11 and not parse(cut).upfilter_id and parse(cut).coded_size == parse(q2).coded_size
    assert codec.decode(cut).size == (96, 64)
    with pytest.raises(ValueError, match="cannot fit"):
        codec.encode(photo_crop, max_bytes=60)


def test_tiny_images_at_scaled_rungs(codec):
    """Where scaling down would round to the photo's own size, the rung codes it as it is."""
    for size in ((1, 1), (1, 3), (2, 2), (3, 1)):
        px = np.random.default_rng(sum(size)).integers(0, 256, size + (3,), dtype=np.uint8)
        data = codec.encode(px, 1)
        assert codec.decode_pixels(data).rgb.shape == size + (3,)
        assert aecodec.info(data)["quality"] == 1


def test_the_command_line_names_the_coded_size(codec, tmp_path, photo_crop):
    from click.testing import CliRunner
    from aecodec.cli import main
    Image.fromarray(photo_crop).save(tmp_path / "p.png")
    runner = CliRunner()
    r = runner.invoke(main, ["compress", str(tmp_path / "p.png"), "-q", "1", "-o", str(tmp_path / "p.aec")])
    assert r.exit_code == 0 and r.output.strip().endswith("q1")
    r = runner.invoke(main, ["info", str(tmp_path / "p.aec")])
    h, w = parse((tmp_path / "p.aec").read_bytes()).coded_size
    assert r.exit_code == 0 and f"96x64 (coded at {w}x{h}, scaled up)" in r.output
    assert "format version: 11" in r.output and f"after scaling:  filter {codec.weights.upfilter.filter_id.hex()}" in r.output
    r = runner.invoke(main, ["decompress", str(tmp_path / "p.aec"), "-o", str(tmp_path / "back.png")])
    assert r.exit_code == 0 and Image.open(tmp_path / "back.png").size == (96, 64)
