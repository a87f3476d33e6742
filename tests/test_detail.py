"""The detail layer: exact tables and bytes, bounded error, and refusal of bad payloads."""
import hashlib
import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import aecodec
from aecodec import detail
from aecodec.format import NEAR_DETAIL, parse
from aecodec.card import default_weights_dir
from aecodec.codec import Codec
from aecodec.model.vqvae import ModelConfig
from conftest import psnr, sample_photo


CELLS = np.zeros((1, 1), dtype=np.int64)


def _gradient():
    y, x = np.mgrid[0:12, 0:10]
    orig = np.stack([(y * 20 + x * 3) % 256, (x * 25) % 256, np.full_like(x, 128)], -1).astype(np.uint8)
    return orig, np.full_like(orig, 100)


def test_tables_are_exact():
    """The decoder rebuilds these integers from one byte; any drift breaks old files."""
    for byte, total, zero, one in [(1, 16785408, 16777216, 1), (96, 16785356, 6601320, 3216196),
                                   (200, 16772525, 20629, 20591), (255, 5755197, 861, 860)]:
        t = detail.table(byte)
        assert (int(t.sum()), int(t[detail.MAX_LEVEL]), int(t[detail.MAX_LEVEL + 1])) == (total, zero, one)
        assert (t == t[::-1]).all() and t.min() >= 1


def test_golden_payload():
    """Format version 2: one step for every class. (Until Part 27 the encoder wrote -64,
    not 0, as the offset of a context no block is in; nothing reads those bytes.)"""
    orig, base = _gradient()
    payload = detail.encode(orig, base, 4.0, CELLS, deadzone=0.2, tilt=None)     # the format, not the policy
    assert len(payload) == 429 and payload[:2] == b"\x00\x40"          # step 4.0 = 64 / 16
    assert hashlib.sha256(payload).hexdigest()[:16] == "ab28c9f7e74dad02"


def test_golden_tilted_payload():
    """Format version 3: the tilt's three bytes follow the step."""
    orig, base = _gradient()
    payload = detail.encode(orig, base, 4.0, CELLS, deadzone=0.2, tilt=detail.Tilt(24, 48, 20))
    assert payload[:5] == b"\x00\x40\x18\x30\x14" and len(payload) == 368
    assert hashlib.sha256(payload).hexdigest()[:16] == "eea311c73ed19f1e"
    out = detail.decode(payload, base, CELLS)
    assert psnr(orig, out) > psnr(orig, base) + 10


def test_golden_near_payload():
    """Format version 10: version 3's payload with 6 more offsets, for the near-frequency
    contexts; the same levels as version 3's, so the same pixels, in fewer bytes on a
    real photo (whose residual has the structure they model: on i.i.d. noise they only
    cost their 6 bytes)."""
    orig = sample_photo("chelsea")[:128, :128].copy()
    base = orig.reshape(32, 4, 32, 4, 3).mean((1, 3)).round().astype(np.uint8).repeat(4, 0).repeat(4, 1)
    cells = np.zeros((8, 8), dtype=np.int64)
    tilted = detail.encode(orig, base, 4.0, cells, deadzone=0.2)
    near = detail.encode(orig, base, 4.0, cells, deadzone=0.2, near=True)
    assert near[:5] == tilted[:5] and (len(near), len(tilted)) == (4422, 4732)
    assert hashlib.sha256(near).hexdigest()[:16] == "cbc79c91c4f67dc2"
    want = detail.decode_levels(tilted, orig.shape[:2], cells)
    got = detail.decode_levels(near, orig.shape[:2], cells, detail.NEAR_VERSION)
    assert all((a is None and b is None) or (a == b).all() for a, b in zip(want.ordered, got.ordered))
    assert (detail.decode(near, base, cells, version=detail.NEAR_VERSION) == detail.decode(tilted, base, cells)).all()
    # decoded levels recoded give back either payload byte for byte
    assert detail.recode(want, orig.shape[:2], cells) == near
    assert detail.recode(got, orig.shape[:2], cells, near=False) == tilted
    with pytest.raises(ValueError, match="tilted"):
        plain = detail.encode(orig, base, 4.0, cells, tilt=None)
        detail.recode(detail.decode_levels(plain, orig.shape[:2], cells, 2), orig.shape[:2], cells)
    noise, smooth = _textured()
    assert len(detail.encode(noise, smooth, 4.0, GRID, near=True)) == len(detail.encode(noise, smooth, 4.0, GRID)) + 6
    with pytest.raises(ValueError, match="need a tilt"):
        detail.encode(orig, base, 4.0, cells, tilt=None, near=True)


def _near_buckets_by_definition(levels: np.ndarray, j: int, bh: int, bw: int) -> np.ndarray:
    """docs/FORMAT.md's rule, block by block: |level| of the same channel at (u - 1, v) and
    (u, v - 1), summed over the block and its four neighbours, bucketed at 1, 2, 4, 8, 16."""
    c, f = detail.ORDER[j]
    u, v = divmod(f, 8)
    near = np.zeros((bh, bw), dtype=np.int64)
    for du, dv in ((1, 0), (0, 1)):
        if u >= du and v >= dv:
            near += np.abs(levels[detail.ORDER.index((c, (u - du) * 8 + v - dv))]).reshape(bh, bw)
    out = np.zeros((bh, bw), dtype=np.int64)
    for y in range(bh):
        for x in range(bw):
            total = sum(near[y + dy, x + dx] for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))
                        if 0 <= y + dy < bh and 0 <= x + dx < bw)
            out[y, x] = sum(total >= edge for edge in (1, 2, 4, 8, 16))
    return out.ravel()


def test_near_contexts_follow_their_definition():
    rng = np.random.default_rng(5)
    bh, bw = 5, 7
    levels = (rng.integers(-3, 4, (detail.CLASSES, bh * bw)) * (rng.random((detail.CLASSES, 1)) < 0.7)).astype(np.int16)
    activity = detail._block_activity(np.array([[0, 1, 2, 1], [2, 2, 0, 1], [1, 0, 0, 0]]), bh * 8, bw * 8)
    plain = dict(detail._contexts(lambda j: levels[j], activity))
    for j, ctx in detail._contexts(lambda j: levels[j], activity, (bh, bw)):
        assert (ctx == plain[j].astype(np.int16) * detail.NEAR_BUCKETS
                + _near_buckets_by_definition(levels, j, bh, bw)).all(), j
        assert ctx.max() < detail.CONTEXTS * detail.NEAR_BUCKETS


def test_tilted_steps_are_integers_of_the_documented_formula():
    """The decoder's per-class steps (1/16 units) come from integer arithmetic only."""
    steps = detail.Tilt(24, 48, 20).steps(64)               # step 4.0
    assert steps.shape == (3, 64) and steps.dtype == np.int64
    assert (steps[1] == steps[2]).all()
    assert [steps[0, 0], steps[0, 7], steps[0, 63]] == [64, 112, 160]      # 1, 1 + 1.5 * 7/14, 2.5 x
    assert [steps[1, 0], steps[1, 7], steps[1, 63]] == [80, 200, 320]      # 1.25 x (1, 2.5, 4) at u+v 0, 7, 14
    assert (detail.Tilt(0, 0, 16).steps(999) == 999).all()
    with pytest.raises(ValueError, match="at least 16"):
        detail.Tilt(0, 0, 15)
    with pytest.raises(ValueError, match="byte"):
        detail.Tilt(256, 0, 16)


def test_a_tilt_spends_fewer_bits_on_high_frequencies():
    orig, base = _gradient()
    flat = detail.encode(orig, base, 2.0, CELLS, tilt=None)
    tilted = detail.encode(orig, base, 2.0, CELLS)
    assert len(tilted) < len(flat)
    assert np.abs(detail.decode(tilted, base, CELLS).astype(float) - orig).max() \
        >= np.abs(detail.decode(flat, base, CELLS, version=2).astype(float) - orig).max()


def test_dead_zone_narrows_at_fine_steps():
    """The encoder's policy: less rounding-down where levels are cheap (fine steps);
    the payload records nothing of it."""
    assert [detail.deadzone_for(s) for s in (64.0, 32.0, 24.0, 16.0, 4.0)] == pytest.approx([0.2, 0.2, 0.15, 0.1, 0.1])
    orig, base = _gradient()
    assert detail.encode(orig, base, 4.0, CELLS) == detail.encode(orig, base, 4.0, CELLS, deadzone=0.1)
    assert detail.encode(orig, base, 4.0, CELLS) != detail.encode(orig, base, 4.0, CELLS, deadzone=0.2)


@pytest.mark.parametrize("tilt, version, widest", [(None, 2, 1.0), (detail.TILT, 3, 5.0)])
def test_round_trip_error_is_bounded_by_the_step(tilt, version, widest):
    """``widest``: the largest class step over the step (TILT: colour at u + v = 14)."""
    assert detail._class_steps(64, tilt).max() == widest * 64
    orig, base = _gradient()
    for step in (1.0, 4.0, 16.0):
        out = detail.decode(detail.encode(orig, base, step, CELLS, tilt=tilt), base, CELLS, version=version)
        assert out.shape == orig.shape and out.dtype == np.uint8
        # coefficient error <= (0.5 + deadzone) class step each; orthonormal transforms keep the energy
        err = np.abs(out.astype(float) - orig).max()
        assert err <= 0.7 * widest * step * np.sqrt(3 * 64) + 1
    fine = detail.decode(detail.encode(orig, base, 1.0, CELLS, tilt=tilt), base, CELLS, version=version)
    fine = fine.astype(float) - orig
    assert np.sqrt((fine ** 2).mean()) < 0.8 * widest and np.abs(fine).max() <= 2 * widest


def test_zero_residual_codes_nothing():
    orig, _ = _gradient()
    payload = detail.encode(orig, orig, 8.0, CELLS)
    head = 5 + detail.CONTEXTS + detail.CLASSES
    assert payload[5 + detail.CONTEXTS:head] == bytes(detail.CLASSES) and len(payload) == head
    assert (detail.decode(payload, orig, CELLS) == orig).all()


def test_a_base_one_level_off_moves_the_output_by_at_most_one():
    """What another device's networks can do to the base image."""
    orig, base = _gradient()
    payload = detail.encode(orig, base, 4.0, CELLS)
    out = detail.decode(payload, base, CELLS).astype(int)
    assert np.abs(detail.decode(payload, base + 1, CELLS).astype(int) - out).max() <= 1


GRID = np.zeros((3, 3), dtype=np.int64)          # the activity cells of a 48x48 image


def _textured(size=48, seed=0):
    """A mid-grey photo-like texture and a smooth base (no pixel near 0 or 255)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    smooth = 128 + 40 * np.sin(x / 7.0)[..., None] * np.cos(y / 5.0)[..., None] * np.array([1, 0.6, -0.4])
    orig = np.clip(smooth + rng.normal(0, 12, (size, size, 3)), 30, 225).astype(np.uint8)
    return orig, np.clip(smooth, 0, 255).astype(np.uint8)


def test_intervals_are_bytes():
    assert detail.Intervals.from_bytes(b"\x30\x10\x30") == detail.Intervals(48, 16, 48)
    assert detail.Intervals(48, 16, 48).to_bytes() == b"\x30\x10\x30"
    for bad in ((256, 0, 0), (0, -1, 0), (0, 0, 1.5)):
        with pytest.raises(ValueError, match="byte"):
            detail.Intervals(*bad)
    with pytest.raises(ValueError, match="3 bytes"):
        detail.Intervals.from_bytes(b"\x30\x10")


def test_a_decode_is_inside_its_intervals():
    """The decoder's own reconstruction sits at each level: holding it changes nothing."""
    orig, base = _textured()
    levels = detail.decode_levels(detail.encode(orig, base, 6.0, GRID), orig.shape[:2], GRID)
    decoded = detail.reconstruct(levels, base)
    assert any(coded is not None and coded.any() for coded in levels.ordered)
    held = detail.constrain(decoded, base, levels, detail.Intervals(32, 16, 16))
    assert np.array_equal(held, decoded)


def test_holding_a_filter_to_the_quantizer_cells_removes_error():
    """With dead zone 1/4, level l means the coefficient was within l - 1/4 .. l + 3/4
    steps (|c| < 3/4 for 0): intervals (48, 16, 48) hold the truth, so clamping a
    noisy "filter" output to them can only bring it closer to the original (the
    transforms are orthonormal), and coefficients come out inside them."""
    orig, base = _textured()
    step = 6.0
    levels = detail.decode_levels(detail.encode(orig, base, step, GRID, deadzone=0.25), orig.shape[:2], GRID)
    decoded = detail.reconstruct(levels, base)
    noise = np.random.default_rng(1).normal(0, 8, orig.shape)
    filtered = np.clip(np.round(decoded + noise), 0, 255).astype(np.uint8)
    held = detail.constrain(filtered, base, levels, detail.Intervals(48, 16, 48))

    def mse(a):
        return np.mean((a.astype(float) - orig) ** 2)
    assert mse(held) < 0.8 * mse(filtered)
    coefs = detail._forward(held.astype(np.float32) - base) * 16 / levels.class_steps()[:, :, None]
    level = levels.band(0, coefs.shape[2])
    signed = np.where(level < 0, -coefs, coefs)             # on the magnitude
    low, high = np.where(level == 0, -0.75, np.abs(level) - 0.25), np.abs(level) + 0.75
    assert (signed >= low - 0.3).all() and (signed <= high + 0.3).all()    # 0.3: rounding to pixels


@pytest.mark.parametrize("version, payload, message", [
    (2, b"", "malformed"), (2, b"\x00\x40" + bytes(206), "malformed"), (2, b"\x00\x40" + bytes(208), "malformed"),
    (2, b"\x00\x00" + bytes(207), "below"),
    (3, b"\x00\x40" + bytes(209), "malformed"), (3, b"\x00\x40\x00\x00\x0f" + bytes(207), "at least 16"),
    (10, b"\x00\x40\x18\x30\x14" + bytes(207), "malformed"),            # version 3's size: 6 offsets short
    (10, b"\x00\x40\x18\x30\x14" + bytes(213) + b"\x00", "malformed"),
])
def test_malformed_payloads(version, payload, message):
    with pytest.raises(detail.DetailError, match=message):
        detail.decode(payload, np.zeros((8, 8, 3), np.uint8), CELLS, version=version)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=16), st.integers(0, 300), st.sampled_from([2, 3, 10]))
def test_fuzz_payload_either_decodes_or_is_refused(words, flip, version):
    orig, base = _gradient()
    good = bytearray(detail.encode(orig, base, 4.0, CELLS, tilt=None if version == 2 else detail.TILT,
                                   near=version == detail.NEAR_VERSION))
    good[flip % len(good)] ^= 0x5A
    head = (2 if version == 2 else 5) + detail.CONTEXTS + detail.CLASSES + (6 if version == 10 else 0)
    for payload in (bytes(good), bytes(good[:head]) + words):
        try:
            out = detail.decode(payload, base, CELLS, version=version)
        except detail.DetailError:
            continue
        assert out.shape == base.shape and out.dtype == np.uint8


def test_ladder_of_the_shipped_model(codec):
    assert codec.qualities == aecodec.QUALITIES
    steps = [rung.step for rung in codec.ladder]
    assert steps[0] == 0 and steps[-1] > 0


@pytest.mark.parametrize("ladder, message", [
    ([[0, 0]], "stages"), ([[12, 0]], "stages"), ([[3, 0.5]], "step"), ([[3]], "entries"), ([[3, "8"]], "step"),
    ([[3, 0, 0.5]], "scale"), ([[3, 0, 5]], "scale"), ([[3, 0, "2"]], "scale"), ([[3, 0, 2, 1]], "entries"),
])
def test_bad_ladders_are_refused(ladder, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(stages=11, ladder=ladder)


@pytest.mark.parametrize("rule, message", [
    ([15], "detail step, bits per pixel"), ([0, 0.25], "positive"), ([15, -1], "positive"), ([15, "0.25"], "positive"),
])
def test_bad_deeper_base_rules_are_refused(rule, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(stages=11, deeper_base=rule)


def _codec_with_rule(folder, rule) -> Codec:
    """The shipped model, its card's ``deeper_base`` rule replaced."""
    shutil.copytree(default_weights_dir(), folder)
    card = json.loads((folder / "model.json").read_text())
    card["config"]["deeper_base"] = rule
    (folder / "model.json").write_text(json.dumps(card))
    return Codec(str(folder), device="cpu")


def test_a_deeper_base_where_the_card_says(tmp_path, codec, photo_crop):
    """Encoder policy: where the rung's stages are cheap enough, a detail layer at a
    step up to the rule's goes over one stage more than the rung names; budgets build
    the same files, and ``info`` still names the quality."""
    always = _codec_with_rule(tmp_path / "always", [54, 1e9])
    top, stage_only = max(codec.qualities), next(q for q, rung in enumerate(codec.ladder, 1) if rung.step == 0)
    rung = codec.ladder[top - 1].stages
    data = always.encode(photo_crop, top)
    assert parse(data).stage_count == rung + 1
    assert aecodec.info(data, weights=tmp_path / "always")["quality"] == top
    assert always.encode(photo_crop, max_bytes=len(data)) == data
    assert parse(always.encode(photo_crop, stage_only)).stage_count == codec.ladder[stage_only - 1].stages
    never = _codec_with_rule(tmp_path / "never", [54, 1e-6])
    assert parse(never.encode(photo_crop, top)).stage_count == rung
    assert psnr(photo_crop, codec.decode_pixels(data).rgb) > psnr(photo_crop, codec.decode_pixels(
        always.encode(photo_crop, top - 1)).rgb)


def test_the_shipped_rule_deepens_the_base_of_smooth_photos_only(codec):
    """At the finest steps a smooth image's detail layer goes over one stage more; a
    busy one's, and every coarser step's, over the stages its rung names."""
    y, x = np.mgrid[0:64, 0:96]
    smooth = np.stack([60 + x, 80 + y, 140 + (x + y) // 4], -1).astype(np.uint8)
    busy = np.random.default_rng(0).integers(0, 256, smooth.shape, dtype=np.uint8)
    deeper_up_to = codec.weights.config.deeper_base[0]
    for q, (stages, step, _) in enumerate(codec.ladder, start=1):
        if step:
            assert parse(codec.encode(busy, q)).stage_count == stages
            assert parse(codec.encode(smooth, q)).stage_count == stages + (step <= deeper_up_to)


def test_detail_qualities_in_the_codec(codec, photo_crop):
    top = max(codec.qualities)
    data = codec.encode(photo_crop, top)
    f = parse(data)
    assert f.version == 11 and f.detail_version == NEAR_DETAIL and f.detail and f.stage_count == codec.ladder[top - 1].stages
    assert detail.Adaptive.from_bytes(f.adaptive) == detail.ADAPTIVE
    out = codec.decode_pixels(data).rgb
    base_only = codec.encode_at(photo_crop, f.stage_count)          # the same stages, no detail layer
    assert psnr(photo_crop, out) > psnr(photo_crop, codec.decode_pixels(base_only).rgb) + 1
    cut = aecodec.truncate(data, len(data) - 1)          # the detail layer goes first
    assert parse(cut).version == 11 and not parse(cut).detail and parse(cut).stage_count == f.stage_count
    assert codec.decode_pixels(cut).rgb.shape == photo_crop.shape
    batch = codec.decode_pixels_many([data, data], batch=2)
    assert all((b.rgb == out).all() for b in batch)


def test_activity_buckets_are_tertiles_of_the_last_two_stages():
    idx = np.zeros((3, 2, 3, 3), dtype=np.int64)
    idx[0] = 5                                   # the first stage does not count
    idx[1, 0] = np.arange(9).reshape(3, 3)       # 0 or 1 non-zero ...
    idx[2, :, 2] = 1                             # ... plus 2 in the last row
    cells = detail.activity(idx)
    assert cells.shape == (3, 3) and set(np.unique(cells)) <= {0, 1, 2}
    assert cells[0, 0] == 0 and cells[2, 2] == 2
    with pytest.raises(ValueError, match="does not fit"):
        detail.encode(*_gradient(), 4.0, np.zeros((2, 2), dtype=np.int64))


def test_ladders_parse_from_text():
    from aecodec.model.vqvae import parse_ladder
    assert parse_ladder("1:0,8:24.5,3:54:1.5") == [(1, 0.0, 1.0), (8, 24.5, 1.0), (3, 54.0, 1.5)]
    for bad in ("1:0,8", "3:54:1.5:2", "3:x"):
        with pytest.raises(ValueError, match="stages:step"):
            parse_ladder(bad)
    assert ModelConfig(stages=11, ladder=parse_ladder("3:0:2,3:54")).quality_ladder() == ((3, 0.0, 2.0), (3, 54.0, 1.0))


def test_adaptive_tables_are_the_documented_roundings():
    """The decoder's fixed-point tables, checked in exact integers: _OCTAVE_EIGHTHS[j - 1]
    is 2^(30 + j/8) and GAIN[i] is 4096 * 2^((i - 64)/32), each rounded to nearest."""
    for j, t in enumerate(detail._OCTAVE_EIGHTHS.tolist(), start=1):
        assert (2 * t - 1) ** 8 < 2 ** (248 + j) < (2 * t + 1) ** 8
    for i, g in enumerate(detail.GAIN.tolist()):
        e = 416 + i - detail.GAIN_RANGE
        assert (2 * g - 1) ** 32 < 2 ** e < (2 * g + 1) ** 32
    g = detail.GAIN
    assert (g[detail.GAIN_RANGE], g[0], g[-1], g[detail.GAIN_RANGE + 32]) == (4096, 1024, 16384, 8192)
    assert (np.diff(g) > 0).all()


def _half_busy(size=64, seed=0):
    """A base image whose left half is flat and right half busy (luma std about 20)."""
    base = np.full((size, size, 3), 120, dtype=np.uint8)
    noise = np.random.default_rng(seed).normal(0, 20, (size, size // 2, 1))
    base[:, size // 2:] = np.clip(120 + noise, 0, 255).astype(np.uint8)
    return base


def test_adaptive_gains_follow_the_base_images_local_variance():
    base = _half_busy()
    gains = detail.Adaptive(10, 58).gains(base).reshape(8, 8)
    assert gains.dtype == np.int64 and (gains[:, :4] < 4096).all() and (gains[:, 4:] > 4096).all()
    # against the float formula: ((v + floor) / G)^(strength / 128), within the tables' rounding
    luma = base.astype(float) @ (np.array([77, 150, 29]) / 256)
    v = luma.reshape(8, 8, 8, 8).transpose(0, 2, 1, 3).reshape(8, 8, 64).var(-1) + 58
    want = 4096 * (v / np.exp(np.log(v).mean())) ** (10 / 128)
    assert np.abs(np.log2(gains / want)).max() < 1 / 32 + 10 / 1024
    assert (detail.Adaptive(0, 58).gains(base) == 4096).all()
    assert (detail.Adaptive(255, 0).gains(np.full((20, 30, 3), 7, np.uint8)) == 4096).all()   # nothing varies
    assert detail.Adaptive(10, 58).gains(base[:61, :59]).shape == (64,)                      # edge blocks padded
    with pytest.raises(ValueError, match="byte"):
        detail.Adaptive(256, 0)
    assert detail.Adaptive.from_bytes(detail.ADAPTIVE.to_bytes()) == detail.ADAPTIVE


def test_adaptive_steps_round_trip():
    """Steps finer in the flat half, coarser in the busy half: the error follows; unit
    gains dequantize exactly as a payload without adaptive steps."""
    base = _half_busy()
    rng = np.random.default_rng(3)
    orig = np.clip(base.astype(float) + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    cells = np.zeros((4, 4), dtype=np.int64)
    adaptive = detail.Adaptive(64, 58)          # strong, so the halves differ clearly
    payload = detail.encode(orig, base, 8.0, cells, adaptive=adaptive)
    levels = detail.decode_levels(payload, orig.shape[:2], cells).adapted(adaptive, base)
    out = detail.reconstruct(levels, base)
    err = (out.astype(float) - orig) ** 2
    assert err[:, :32].mean() < 0.8 * err[:, 32:].mean()
    assert hashlib.sha256(out.tobytes()).hexdigest()[:16] == "4f6af62d2d3610df"
    plain = detail.encode(orig, base, 8.0, cells)
    unit = detail.decode_levels(plain, orig.shape[:2], cells).adapted(detail.Adaptive(0, 0), base)
    assert (detail.reconstruct(unit, base) == detail.decode(plain, base, cells)).all()
    held = detail.constrain(out, base, levels, detail.Intervals(32, 16, 16))
    assert np.array_equal(held, out)            # the decoder's own output sits inside its intervals
