"""The public API: any size, modes, qualities, model checks, truncation."""
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import aecodec
from conftest import psnr


@pytest.mark.parametrize("h, w", [(1, 1), (1, 37), (29, 1), (17, 31), (16, 16), (61, 97)])
def test_any_size_round_trips(codec, h, w):
    rng = np.random.default_rng(h * 1000 + w)
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    out = codec.decode(codec.encode(a, 2))
    assert out.size == (w, h) and out.mode == "RGB"


def test_same_bytes_every_time(codec, photo_crop):
    assert codec.encode(photo_crop, 4) == codec.encode(photo_crop, 4)


def test_qualities_rise_in_size_and_psnr(codec, photo_crop):
    sizes, scores = [], []
    for q in aecodec.QUALITIES:
        data = codec.encode(photo_crop, q)
        sizes.append(len(data))
        scores.append(psnr(photo_crop, codec.decode(data)))
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert scores[-1] > scores[0] + 3


def test_qualities_constant():
    assert list(aecodec.QUALITIES) == sorted(aecodec.QUALITIES)
    assert aecodec.DEFAULT_QUALITY in aecodec.QUALITIES


@pytest.mark.parametrize("quality", [0, 99, 2.5, "6", True])
def test_bad_quality(codec, photo_crop, quality):
    with pytest.raises(ValueError, match="quality"):
        codec.encode(photo_crop, quality)


def test_grayscale_stays_grayscale(codec, photo_crop):
    gray = np.asarray(Image.fromarray(photo_crop).convert("L"))
    out = codec.decode(codec.encode(gray, 5))
    assert out.mode == "L" and out.size == (96, 64)
    assert psnr(gray, out) > 20


def test_alpha_is_kept_exactly(codec, photo_crop):
    alpha = np.tile(np.arange(96, dtype=np.uint8) * 2, (64, 1))
    rgba = np.dstack([photo_crop, alpha])
    out = codec.decode(codec.encode(rgba, 3))
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[:, :, 3], alpha)
    la = codec.decode(codec.encode(Image.fromarray(rgba).convert("LA"), 3))
    assert la.mode == "LA"


def test_palette_16bit_cmyk_and_exif(codec, photo_crop):
    im = Image.fromarray(photo_crop)
    assert codec.decode(codec.encode(im.convert("P"), 2)).mode == "RGB"
    assert codec.decode(codec.encode(im.convert("CMYK"), 2)).mode == "RGB"
    deep = photo_crop.astype(np.uint16) * 257
    assert psnr(photo_crop, codec.decode(codec.encode(deep, 5))) > 20
    i16 = Image.fromarray((photo_crop[:, :, 0].astype(np.uint16) * 257))
    assert codec.decode(codec.encode(i16, 2)).mode == "L"
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6                       # rotate 90 degrees on display
    im.save(buf, format="JPEG", exif=exif)
    rotated = codec.decode(codec.encode(Image.open(buf), 2))
    assert rotated.size == (64, 96)


def test_path_input_and_array_output(tmp_path, photo_crop):
    path = tmp_path / "in.png"
    Image.fromarray(photo_crop).save(path)
    before = path.read_bytes()
    arr = aecodec.decode(aecodec.encode(path, 3), as_array=True)
    assert arr.shape == (64, 96, 3) and arr.dtype == np.uint8
    assert path.read_bytes() == before


@pytest.mark.parametrize("bad", [None, 3, "/no/such/file.png", np.zeros((0, 5, 3), np.uint8),
                                 np.zeros((4, 4, 7), np.uint8)])
def test_bad_images(codec, bad):
    with pytest.raises(ValueError):
        codec.encode(bad, 2)


def test_other_model_is_refused(codec, photo_crop):
    data = bytearray(codec.encode(photo_crop, 1))
    from aecodec.format import parse, AecFile
    f = parse(bytes(data))
    other = AecFile(f.mode, b"\x01" * 8, f.width, f.height, f.stages).to_bytes()
    with pytest.raises(aecodec.FormatError, match="0101010101010101"):
        codec.decode(other)


def test_truncate_keeps_whole_stages(codec, photo_crop):
    full = codec.encode(photo_crop, 8)
    cut = aecodec.truncate(full, len(full) // 2)
    assert len(cut) <= len(full) // 2
    from aecodec.format import parse
    assert 1 <= parse(cut).stage_count < 8
    assert psnr(photo_crop, codec.decode(cut)) < psnr(photo_crop, codec.decode(full))
    with pytest.raises(ValueError):
        aecodec.truncate(full, 10)


def test_cuda_without_gpu_is_a_clear_error():
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        aecodec.Codec(device="cuda")


def test_pillow_works_after_a_plain_import(tmp_path, photo_crop):
    """In a fresh interpreter: no call other than ``import aecodec``."""
    import subprocess
    import sys
    np.save(tmp_path / "crop.npy", photo_crop)
    script = f"""
import io, numpy as np
from PIL import Image
import aecodec
crop = np.load({str(tmp_path / 'crop.npy')!r})
Image.fromarray(crop).save({str(tmp_path / 'a.aec')!r}, quality=3)
buf = io.BytesIO()
Image.fromarray(crop).save(buf, format="AEC")
im = Image.open({str(tmp_path / 'a.aec')!r})
print(im.format, im.size, im.info["stages"], Image.MIME["AEC"], buf.getvalue()[:4] == b"\\x89AEC")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["AEC", "(96,", "64)", "3", "image/x-aec", "True"]
    assert aecodec.decode((tmp_path / "a.aec").read_bytes()).size == (96, 64)


def test_pillow_plugin(tmp_path, photo_crop, codec):
    aecodec.register_pillow()          # idempotent
    path = tmp_path / "x.aec"
    Image.fromarray(photo_crop).save(path, quality=4)
    im = Image.open(path)
    assert im.format == "AEC" and im.size == (96, 64) and im.info["stages"] == codec.ladder[3].stages
    assert psnr(photo_crop, np.asarray(im.convert("RGB"))) > 20
    buf = io.BytesIO()
    Image.fromarray(photo_crop).save(buf, format="AEC")
    assert buf.getvalue()[:4] == b"\x89AEC"
    assert Image.open(io.BytesIO(buf.getvalue())).info["stages"] == codec.ladder[aecodec.DEFAULT_QUALITY - 1][0]
    budget = io.BytesIO()
    Image.fromarray(photo_crop).save(budget, format="AEC", max_bytes=600)
    assert 300 < len(budget.getvalue()) <= 600
    png = io.BytesIO()
    Image.fromarray(photo_crop).save(png, format="PNG")
    assert Image.open(io.BytesIO(png.getvalue())).format == "PNG"
    # Our magic but a broken header: the opener answers SyntaxError, as Pillow expects,
    # and Image.open reports an unidentified image.
    from aecodec.pillow_plugin import AecImageFile
    broken = buf.getvalue()[:9]
    with pytest.raises(SyntaxError, match="not a valid .aec file"):
        AecImageFile(io.BytesIO(broken))
    with pytest.raises(Image.UnidentifiedImageError):
        Image.open(io.BytesIO(broken))


def test_size_budgets_pick_the_best_file_that_fits(codec, photo_crop):
    # One search over all the stages the ladder uses; the highest quality that fits,
    # its stages a prefix of that search, then the detail step refined to the budget.
    from aecodec.format import parse
    full = codec.encode(photo_crop, max(codec.qualities))
    base = aecodec.truncate(full, len(full) - 1)          # the detail layer dropped
    assert parse(base).version == 11 and not parse(base).detail        # the stages stay coded with zero tables
    assert codec.encode(photo_crop, max_bytes=len(full)) == full
    for budget in (len(full) // 3, len(full) // 2, (len(base) + len(full)) // 2, len(full) - 1):
        data = codec.encode(photo_crop, max_bytes=budget)
        assert len(aecodec.truncate(full, budget)) <= len(data) <= budget
        assert codec.decode_pixels(data).rgb.shape == photo_crop.shape
    middle = codec.encode(photo_crop, max_bytes=(len(base) + len(full)) // 2)
    assert parse(middle).detail and len(middle) > 0.85 * (len(base) + len(full)) // 2
    pixels = 96 * 64
    data = codec.encode(photo_crop, bpp=2.0)
    assert len(data) * 8 / pixels <= 2.0
    with pytest.raises(ValueError, match="first stage alone"):
        codec.encode(photo_crop, max_bytes=20)
    with pytest.raises(ValueError):
        codec.encode(photo_crop, max_bytes=100, bpp=1.0)


def test_tiles_change_nothing(codec, photo_large):
    """Large images go through in tiles; the result must equal the one-piece result."""
    from aecodec.codec import Codec
    rgb = photo_large[:200, :330]
    tiled = Codec(device="cpu", tile=4)
    data = codec.encode(rgb, 5)
    assert tiled.encode(rgb, 5) == data
    # Convolutions on other shapes may round differently in the last float bit: at most
    # a rare off-by-one pixel value, never a seam.
    diff = np.abs(tiled.decode_pixels(data).rgb.astype(int) - codec.decode_pixels(data).rgb.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_pixel_limit(photo_crop):
    from aecodec.codec import Codec
    small = Codec(device="cpu", max_pixels=1000)
    with pytest.raises(ValueError, match="limit"):
        small.encode(photo_crop, 1)
    data = aecodec.encode(photo_crop, 1)
    with pytest.raises(aecodec.FormatError, match="limit"):
        small.decode(data)


def test_module_level_budget_uses_every_stage(photo_crop):
    full = aecodec.encode(photo_crop, max(aecodec.QUALITIES))
    assert aecodec.encode(photo_crop, max_bytes=len(full)) == full
    assert aecodec.encode(photo_crop) == aecodec.encode(photo_crop, aecodec.DEFAULT_QUALITY)


def test_batched_networks_give_the_files_one_at_a_time_gives(codec, photo_crop):
    # The last two share a 4x6 latent grid with the first two but not their pixel size.
    crops = [photo_crop, np.roll(photo_crop, 9, axis=1), photo_crop[:48, :80], np.flipud(photo_crop).copy(),
             photo_crop[:61, :90], photo_crop[3:, 5:]]
    files = codec.encode_many(crops, 5, batch=3)
    assert files == [codec.encode(c, 5) for c in crops]
    together = codec.decode_pixels_many(files, batch=3)
    for crop, data, px in zip(crops, files, together):
        alone = codec.decode_pixels(data).rgb.astype(int)
        assert px.rgb.shape == alone.shape == crop.shape
        assert np.abs(px.rgb.astype(int) - alone).max() <= 1     # last-bit rounding of batched convs
    with pytest.raises(ValueError, match="batch"):
        codec.encode_many(crops, 5, batch=0)


def test_files_of_the_previous_release_still_decode(codec):
    """Written by the release before the detail layer (commit 7a8608f, same model) at
    qualities 5 and 11 (= stages), from a 96x64 crop of kodim23. They decode to exactly
    the stored pixels: synthesis is exact by construction (model/exact.py), so the
    same file gives the same pixels on every machine, which this pins."""
    from aecodec.format import parse
    data_dir = Path(__file__).parent / "data"
    for q in (5, 11):
        data = (data_dir / f"release-0.1-q{q}.aec").read_bytes()
        assert parse(data).version == 1 and parse(data).stage_count == q
        want = np.asarray(Image.open(data_dir / f"release-0.1-q{q}.decoded.png")).astype(int)
        got = codec.decode_pixels(data).rgb.astype(int)
        assert got.shape == want.shape == (64, 96, 3)
        assert (got == want).all()


def test_files_with_an_untilted_detail_layer_still_decode(codec):
    """Format version 2 (one detail step for every frequency), written at commit 0642fdb
    at its quality 6 (4 stages + step 48) from the same crop: same pixels today."""
    from aecodec.format import parse
    data_dir = Path(__file__).parent / "data"
    data = (data_dir / "format-v2-q6.aec").read_bytes()
    f = parse(data)
    assert f.version == 2 and f.stage_count == 4 and f.detail[:2] == b"\x03\x00"      # step 48
    want = np.asarray(Image.open(data_dir / "format-v2-q6.decoded.png")).astype(int)
    assert (codec.decode_pixels(data).rgb.astype(int) == want).all()


def test_files_of_an_earlier_post_filter_still_decode(codec):
    """Format version 4, written at commit 4fda122 at its quality 7 (4 stages + step 32)
    from the same crop, naming the first shipped post-filter (e7e9ca6ca51f937f): a
    later filter in the card must not change its pixels."""
    from aecodec.format import parse
    data_dir = Path(__file__).parent / "data"
    data = (data_dir / "format-v4-q7.aec").read_bytes()
    f = parse(data)
    assert (f.version, f.stage_count, f.filter_id.hex(), f.filter_class) == (4, 4, "e7e9ca6ca51f937f", 6)
    want = np.asarray(Image.open(data_dir / "format-v4-q7.decoded.png")).astype(int)
    assert (codec.decode_pixels(data).rgb.astype(int) == want).all()


def test_files_held_to_intervals_keep_their_pixels(codec):
    """Format version 5, written on 2026-12-05 at quality 7 (4 stages + step 27) from
    the astronaut crop of the ``photo_crop`` fixture: the post-filter c53d045816f1d627,
    its output held to intervals (32, 8, 19). A later filter in the card must not
    change its pixels."""
    from aecodec.format import parse
    data_dir = Path(__file__).parent / "data"
    data = (data_dir / "format-v5-q7.aec").read_bytes()
    f = parse(data)
    assert (f.version, f.stage_count, f.filter_id.hex(), f.intervals) == (5, 4, "c53d045816f1d627", b"\x20\x08\x13")
    want = np.asarray(Image.open(data_dir / "format-v5-q7.decoded.png")).astype(int)
    assert (codec.decode_pixels(data).rgb.astype(int) == want).all()


def test_packed_files_are_the_version_5_files_repacked(codec):
    """Format version 6, written on 2026-12-06 from the same crop at the same quality:
    the version 5 golden file with its detail layer's class bytes packed (a 24-byte
    bitmap and the coded classes' bytes instead of 192 bytes), 106 bytes smaller, and
    the same pixels."""
    from dataclasses import replace
    from aecodec.format import PACKED_DETAIL, pack_detail, parse
    data_dir = Path(__file__).parent / "data"
    v5, v6 = (data_dir / "format-v5-q7.aec").read_bytes(), (data_dir / "format-v6-q7.aec").read_bytes()
    f5 = parse(v5)
    assert replace(f5, detail=pack_detail(f5.detail), detail_version=PACKED_DETAIL).to_bytes() == v6
    assert parse(v6).version == 6 and len(v5) - len(v6) == 106
    want = np.asarray(Image.open(data_dir / "format-v6-q7.decoded.png")).astype(int)
    assert (want == np.asarray(Image.open(data_dir / "format-v5-q7.decoded.png"))).all()
    assert (codec.decode_pixels(v6).rgb.astype(int) == want).all()


def test_scaled_files_of_the_previous_release_keep_their_pixels(codec, photo_crop):
    """Format version 7, written at commit e0d926a at its quality 3 (3 stages + step 54,
    coded at half size) from the ``photo_crop`` fixture, and version 8, the same file
    plus the id and class of the filter after scaling up, written at cb43285. This
    release writes the same indices as version 11, its stages coded with zero tables
    (Part 28), its detail layer's steps adapted to each block (TRAINING_LOG Part 26) and
    its levels coded with near-frequency contexts (Part 27), naming the retrained filter
    after scaling up (Part 25); both earlier files still decode to their own pixels."""
    from aecodec import detail
    from aecodec.format import parse
    data_dir = Path(__file__).parent / "data"
    v7, v8 = (data_dir / "format-v7-q3.aec").read_bytes(), (data_dir / "format-v8-q3.aec").read_bytes()
    f7, f8 = parse(v7), parse(v8)
    assert (f7.version, f7.coded_size, f7.stage_count) == (7, (32, 48), 3) and f8.version == 8
    assert f8.without_upfilter().to_bytes() == v7 and len(v8) - len(v7) == 9
    now = parse(codec.encode(photo_crop, 3))
    assert (now.version, now.coded_size) == (11, f7.coded_size)
    assert (codec.entropy_decode(now.stages, *now.coded_size, now.zeros_id)
            == codec.entropy_decode(f7.stages, *f7.coded_size, b"")).all()
    assert now.adaptive == detail.ADAPTIVE.to_bytes() and now.upfilter_class == f8.upfilter_class
    assert now.upfilter_id == codec.weights.upfilter.filter_id != f8.upfilter_id
    for data, name in ((v7, "format-v7-q3"), (v8, "format-v8-q3")):
        want = np.asarray(Image.open(data_dir / f"{name}.decoded.png")).astype(int)
        assert (codec.decode_pixels(data).rgb.astype(int) == want).all(), name
    assert (np.asarray(Image.open(data_dir / "format-v7-q3.decoded.png"))
            != np.asarray(Image.open(data_dir / "format-v8-q3.decoded.png"))).mean() > 0.3


def test_quality_6_of_the_previous_release_keeps_its_pixels(codec):
    """Format version 8, written at 08ec77f at its quality 6 (3 stages + step 32 coded at
    1/1.25 of the ``photo_crop`` fixture, filtered after scaling up by e8fed485), before
    the detail layer's steps adapted to each block."""
    from aecodec.format import parse
    data_dir = Path(__file__).parent / "data"
    golden = (data_dir / "format-v8-q6.aec").read_bytes()
    f = parse(golden)
    assert (f.version, f.coded_size, f.stage_count, f.adaptive) == (8, (51, 77), 3, b"")
    want = np.asarray(Image.open(data_dir / "format-v8-q6.decoded.png"))
    assert (codec.decode_pixels(golden).rgb == want).all()


@pytest.mark.parametrize("quality, coded_size", [(6, (51, 77)), (7, (64, 96))])
def test_version_9_files_of_the_previous_release_keep_their_pixels(codec, quality, coded_size):
    """Format version 9, written at 3d0a895 at its qualities 6 (3 stages + step 32 coded
    at 1/1.25, filtered after scaling up) and 7 (the same at full size) from the
    ``photo_crop`` fixture: the detail layer's steps follow the base image's local
    variance (TRAINING_LOG Part 26)."""
    from aecodec.format import parse
    data_dir = Path(__file__).parent / "data"
    golden = (data_dir / f"format-v9-q{quality}.aec").read_bytes()
    f = parse(golden)
    assert (f.version, f.coded_size, f.stage_count, f.adaptive) == (9, coded_size, 3, bytes((10, 58)))
    want = np.asarray(Image.open(data_dir / f"format-v9-q{quality}.decoded.png"))
    assert (codec.decode_pixels(golden).rgb == want).all()
    # the same levels dequantized without the adaptive steps decode to other pixels
    assert not (codec.decode_pixels(f.__class__(**{**f.__dict__, "adaptive": b"\x00\x00"}).to_bytes()).rgb
                == want).all()


@pytest.mark.parametrize("quality, coded_size", [(6, (51, 77)), (7, (64, 96))])
def test_version_10_files_of_the_previous_release_keep_their_pixels(codec, quality, coded_size):
    """Format version 10, written at cfb09ad at its qualities 6 and 7 from the
    ``photo_crop`` fixture: its detail layer codes its levels with near-frequency
    contexts, at adaptive strength 14 (TRAINING_LOG Part 27). The same stages as the
    version 9 file of the release before; those levels recoded with the version 10
    contexts decode to its pixels (tests/test_detail.py, where a larger photo shows the
    bytes they save)."""
    from dataclasses import replace
    from aecodec import detail
    from aecodec.format import NEAR_DETAIL, pack_detail, parse
    data_dir = Path(__file__).parent / "data"
    golden = (data_dir / f"format-v10-q{quality}.aec").read_bytes()
    f, before = parse(golden), parse((data_dir / f"format-v9-q{quality}.aec").read_bytes())
    rung = codec.ladder[quality - 1]
    assert (f.version, f.coded_size, f.stage_count, f.adaptive) == (10, coded_size, 3, bytes((14, 58)))
    assert f.filter_class == codec.weights.postfilter.class_for(3, rung.step)
    if rung.scale > 1:
        assert codec.weights.upfilter.class_rungs[f.upfilter_class] == rung
    assert f.stages == before.stages and before.adaptive == bytes((10, 58))
    want = np.asarray(Image.open(data_dir / f"format-v10-q{quality}.decoded.png"))
    assert (codec.decode_pixels(golden).rgb == want).all()
    # version 9's levels recoded in version 10's layout: the same pixels as the version 9 file
    payload, layout = before.unpacked_detail()
    cells = detail.activity(codec.entropy_decode(before.stages, *before.coded_size, b""))
    levels = detail.decode_levels(payload, before.coded_size, cells, layout)
    recoded = detail.recode(levels, before.coded_size, cells)
    same = detail.decode_levels(recoded, before.coded_size, cells, detail.NEAR_VERSION)
    assert all((a is None and b is None) or (a == b).all() for a, b in zip(levels.ordered, same.ordered))
    again = replace(before, detail=pack_detail(recoded, NEAR_DETAIL), detail_version=NEAR_DETAIL)
    assert again.version == 10 and (codec.decode_pixels(again.to_bytes()).rgb == np.asarray(
        Image.open(data_dir / f"format-v9-q{quality}.decoded.png"))).all()


@pytest.mark.parametrize("quality, coded_size, previous", [(2, (32, 48), "format-v8-q2.aec"),
                                                            (6, (51, 77), "format-v10-q6.aec"),
                                                            (7, (64, 96), "format-v10-q7.aec")])
def test_golden_files_with_zero_tables(codec, photo_crop, quality, coded_size, previous):
    """Golden bytes and pixels of this release's qualities 2, 6 and 7: format version 11,
    whose stages are coded with the card's zero tables (TRAINING_LOG Part 28). They hold
    the indices of the previous release's files of the same rung (cfb09ad wrote
    ``format-v8-q2.aec``), in fewer bytes, and the same detail layer, so they decode to
    the same pixels."""
    from dataclasses import replace
    from aecodec.format import parse
    data_dir = Path(__file__).parent / "data"
    golden = (data_dir / f"format-v11-q{quality}.aec").read_bytes()
    f, before = parse(golden), parse((data_dir / previous).read_bytes())
    assert (f.version, f.coded_size, f.stage_count, f.zeros_id) == (11, coded_size, before.stage_count, codec.zeros_id)
    assert codec.encode(photo_crop, quality) == golden
    want = np.asarray(Image.open(data_dir / f"format-v11-q{quality}.decoded.png"))
    assert (codec.decode_pixels(golden).rgb == want).all()
    old = codec.entropy_decode(before.stages, *before.coded_size, b"")
    assert (codec.entropy_decode(f.stages, *f.coded_size, f.zeros_id) == old).all()
    assert sum(map(len, f.stages)) <= sum(map(len, before.stages))     # whole 4-byte words: equal on this crop
    if f.detail:
        assert f.detail == before.detail
        assert (want == np.asarray(Image.open(data_dir / previous.replace(".aec", ".decoded.png")))).all()
    # the 18-context tables alone do not read these stages
    with pytest.raises(Exception, match="does not decode|not what the encoder writes"):
        codec.entropy_decode(f.stages, *f.coded_size, b"")
    # a file naming zero tables these weights do not have is refused, naming them
    other = replace(f, zeros_id=b"\x01" * 8).to_bytes()
    with pytest.raises(Exception, match="zero tables 0101010101010101"):
        codec.decode_pixels(other)


def test_a_packed_head_the_coder_words_do_not_fit_is_refused(codec):
    """A bitmap that claims one more coded class still parses (the container cannot
    tell), but the detail layer's decoder refuses the words it leaves."""
    import zlib
    from aecodec.format import FormatError, parse
    data = bytearray((Path(__file__).parent / "data" / "format-v6-q7.aec").read_bytes()[:-4])
    f = parse(bytes(data) + zlib.crc32(bytes(data)).to_bytes(4, "big"))
    bitmap = data.index(f.detail) + 20
    j = next(j for j in range(191, -1, -1) if not data[bitmap + j // 8] >> (7 - j % 8) & 1)
    data[bitmap + j // 8] |= 1 << (7 - j % 8)
    with pytest.raises(FormatError):
        codec.decode_pixels(bytes(data) + zlib.crc32(bytes(data)).to_bytes(4, "big"))


def test_encoder_writes_what_the_previous_release_wrote(codec, kodak_dir):
    """The indices are what that release wrote from the same photo, and coded without
    the zero tables, the stage payloads are byte for byte its own: without the zero
    tables and the post-filter's header fields, the file is that release's version 1
    file, which it can read."""
    from dataclasses import replace
    from aecodec.entropy import encode_stage
    from aecodec.format import parse
    with Image.open(kodak_dir / "kodim23.png") as im:
        crop = np.asarray(im.convert("RGB"))[200:264, 300:396].copy()
    data_dir = Path(__file__).parent / "data"
    q5 = (data_dir / "release-0.1-q5.aec").read_bytes()
    q11 = (data_dir / "release-0.1-q11.aec").read_bytes()
    f = parse(codec.encode_at(crop, 5))             # 5 stages, no detail layer (release 0.1's q5)
    indices = codec.entropy_decode(f.stages, f.height, f.width, f.zeros_id)
    assert f.version == 11 and (indices == codec.entropy_decode(parse(q5).stages, f.height, f.width, b"")).all()
    old = replace(f, stages=tuple(encode_stage(codec.freqs, indices, s) for s in range(5)), zeros_id=b"")
    assert old.version == 4 and old.without_filter().to_bytes() == q5
    assert psnr(crop, codec.decode_pixels(q11).rgb) > psnr(crop, codec.decode_pixels(q5).rgb) > 25
