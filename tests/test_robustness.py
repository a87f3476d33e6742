"""Hostile files, determinism across processes and threads, and no lost data."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

import aecodec


@pytest.fixture(scope="module")
def small_file():
    rng = np.random.default_rng(7)
    return aecodec.encode(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8), 3)


def test_every_prefix_of_a_real_file_is_refused(small_file):
    for cut in range(len(small_file)):
        with pytest.raises(aecodec.FormatError):
            aecodec.decode(small_file[:cut])


def test_every_bit_flip_of_a_real_file_is_refused(small_file):
    for i in range(0, len(small_file) * 8, 3):
        bad = bytearray(small_file)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(aecodec.FormatError):
            aecodec.decode(bytes(bad))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_fuzz_decode_garbage(data):
    with pytest.raises(aecodec.FormatError):
        aecodec.decode(b"\x89AEC" + data)


def test_non_bytes_input():
    with pytest.raises(aecodec.FormatError):
        aecodec.decode("not bytes")


def test_animated_image_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (20, 10), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    out = np.asarray(aecodec.decode(aecodec.encode(path, 6)).convert("RGB")).astype(int)
    assert out[:, :, 0].mean() > out[:, :, 2].mean()


def test_huge_declared_size_with_tiny_payload_is_refused_at_once(small_file):
    """A hostile header must not buy minutes of decoding with a few bytes."""
    from aecodec.format import AecFile, parse
    f = parse(small_file)
    hostile = AecFile(f.mode, f.model_id, 12000, 12000, f.stages).to_bytes()
    with pytest.raises(aecodec.FormatError, match="too short"):
        aecodec.decode(hostile)


def _rgba_file():
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (20, 24, 4), dtype=np.uint8)
    return aecodec.encode(img, 3)


@pytest.mark.parametrize("damage", ["alpha-trailing", "alpha-unterminated", "stage-junk-word",
                                    "stage-junk-words", "detail-junk-word"])
def test_lax_payloads_are_refused(damage):
    """Each with a valid CRC: only the encoder's own bytes are accepted."""
    import zlib
    from dataclasses import replace
    from aecodec.format import parse
    if damage.startswith("alpha"):
        f = parse(_rgba_file())
        if damage == "alpha-trailing":
            f = replace(f, alpha=f.alpha + b"junk")
        else:
            raw = zlib.decompress(f.alpha)
            stream = zlib.compressobj(9)
            f = replace(f, alpha=stream.compress(raw) + stream.flush(zlib.Z_SYNC_FLUSH))   # no end
        match = "alpha"
    elif damage.startswith("stage"):
        f = parse(aecodec.encode(np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8), 3))
        extra = b"\x00\x00\x00\x00" if damage == "stage-junk-word" else b"\x12\x34\x56\x78" * 2
        f = replace(f, stages=(f.stages[0] + extra,) + f.stages[1:])
        match = "stage 1"
    else:
        f = parse(aecodec.encode(np.random.default_rng(2).integers(0, 256, (20, 24, 3), dtype=np.uint8),
                                 max(aecodec.QUALITIES)))
        assert f.detail
        f = replace(f, detail=f.detail + b"\x00\x00\x00\x00")
        match = "detail"
    with pytest.raises(aecodec.FormatError, match=match):
        aecodec.decode(f.to_bytes())
