"""The MS-SSIM diagnostic splits the benchmark's own MS-SSIM exactly (bench/msssim_terms.py)."""
import io

import numpy as np
import pytest
from PIL import Image

from aecodec.bench import msssim_terms
from aecodec.bench.metrics import ms_ssim, psnr
from conftest import sample_photo


def _jpeg(rgb, quality):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def test_scale_terms_add_up_to_the_reported_ms_ssim():
    rgb = sample_photo("astronaut")[100:300, 120:340].copy()
    for decoded in (_jpeg(rgb, 20), _jpeg(rgb, 80), np.clip(rgb.astype(int) + 9, 0, 255).astype(np.uint8)):
        terms = msssim_terms.scale_terms(rgb, decoded)
        assert terms.shape == (5, 3) and (terms >= 0).all()
        assert abs(np.exp(-terms.sum(0)).mean() - ms_ssim(rgb, decoded)) < 1e-5


def test_a_coarser_jpeg_loses_more_at_every_scale():
    rgb = sample_photo("astronaut")[100:300, 120:340].copy()
    coarse, fine = (msssim_terms.scale_terms(rgb, _jpeg(rgb, q)).mean(1) for q in (10, 90))
    assert (coarse[:4] > fine[:4]).all()


def test_cs_by_variance_covers_each_map_once():
    rgb = sample_photo("astronaut")[100:300, 120:340].copy()
    decoded = _jpeg(rgb, 30)
    out = msssim_terms.cs_by_variance(rgb, decoded)
    assert sorted(out) == [0, 1, 2]
    n0, loss0 = out[0]
    assert n0.sum() == (200 - 10) * (220 - 10)              # the 'valid' Gaussian window's map
    assert len(n0) == len(msssim_terms.VARIANCE_EDGES) + 1 and (loss0 >= 0).all()


def test_jpeg_at_psnr_finds_the_nearest_quality():
    rgb = sample_photo("astronaut")[100:300, 120:340].copy()
    target = psnr(rgb, _jpeg(rgb, 57))
    quality, decoded, size = msssim_terms.jpeg_at_psnr(rgb, target)
    assert abs(psnr(rgb, decoded) - target) <= abs(psnr(rgb, _jpeg(rgb, 57)) - target) + 1e-9
    assert size > 0 and abs(quality - 57) <= 3


def test_the_tool_refuses_photos_too_small_for_ms_ssim(tmp_path):
    Image.fromarray(sample_photo("astronaut")[:120, :300].copy()).save(tmp_path / "small.png")
    with pytest.raises(SystemExit, match="no photo with both sides at least 161"):
        msssim_terms.main(["--images", str(tmp_path), "--every", "1", "--qualities", "1"])
