"""Same file, same pixels: whatever the thread count, the batch, or the process.

Synthesis is exact by construction (aecodec/model/exact.py), so these compare for
equality, on several photos and qualities (with and without the detail layer)."""
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import sample_photo

_DECODE_IN_SUBPROCESS = """
import sys, hashlib, torch
torch.set_num_threads(int(sys.argv[1]))
from aecodec.codec import Codec
codec = Codec(device="cpu")
for path in sys.argv[2:]:
    px = codec.decode_pixels(open(path, "rb").read())
    print(hashlib.sha256(px.rgb.tobytes()).hexdigest())
"""


@pytest.fixture(scope="module")
def files(codec):
    photos = [sample_photo("coffee")[:200, :296], sample_photo("chelsea")[50:250, 100:400],
              sample_photo("astronaut")[:160, :160]]
    return [codec.encode(p, q) for p in photos for q in (2, 7, max(codec.qualities))]


def test_batches_give_the_pixels_of_single_decodes(codec, files):
    alone = [codec.decode_pixels(f).rgb for f in files]
    for batch in (2, 3, 9):
        together = codec.decode_pixels_many(files, batch=batch)
        assert all((a == t.rgb).all() for a, t in zip(alone, together))


def test_encode_many_writes_the_bytes_of_single_encodes(codec):
    photos = [sample_photo("coffee")[:96, :128], sample_photo("coffee")[100:196, 200:328],
              sample_photo("chelsea")[:96, :128], sample_photo("astronaut")[:96, :128]]
    for q in (3, max(codec.qualities)):
        assert codec.encode_many(photos, q, batch=4) == [codec.encode(p, q) for p in photos]


def test_thread_counts_and_processes_give_the_same_pixels(codec, files, tmp_path):
    paths = []
    for k, f in enumerate(files):
        paths.append(tmp_path / f"{k}.aec")
        paths[-1].write_bytes(f)
    here = [hashlib.sha256(codec.decode_pixels(f).rgb.tobytes()).hexdigest() for f in files]
    for threads in (1, 2, 4):
        out = subprocess.run([sys.executable, "-c", _DECODE_IN_SUBPROCESS, str(threads), *map(str, paths)],
                             capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent)
        assert out.stdout.split() == here, f"{threads} threads"


def test_the_float32_option_is_within_a_few_levels(codec, files):
    """One level in the base image, which the post-filter may turn into two, and the
    intervals (taken around that base) into three; in a file coded at a reduced size,
    scaling up and the filter after it spread the differences a little further (four
    levels at most, on a tenth of the pixels that differ by more than one before)."""
    from aecodec.codec import Codec
    from aecodec.format import parse
    fast = Codec(device="cpu", exact=False)
    for f in files[:3]:
        a, b = fast.decode_pixels(f).rgb.astype(int), codec.decode_pixels(f).rgb.astype(int)
        most, share, wide = (4, 0.4, 0.012) if parse(f).scaled else (3, 0.3, 0.005)
        assert np.abs(a - b).max() <= most and (a != b).mean() < share and (np.abs(a - b) > 1).mean() < wide


def test_the_cpu_encoder_codes_detail_against_the_float32_base(codec):
    """Encoder policy (TRAINING_LOG Part 14): on a CPU the base image a detail layer is
    coded against comes from the 3x faster float32 decoder, within one level of the
    exact base every decoder adds the layer to."""
    photo = sample_photo("chelsea")[:96, :128]
    idx = codec.indices([photo], 4)[0]
    base = codec._encoder_bases([idx], 96, 128)[0]
    exact = codec.synthesize(idx, 96, 128)
    assert (base == codec._synthesize([idx], 96, 128, exact=False)[0]).all()
    assert np.abs(base.astype(int) - exact).max() <= 1 and (base != exact).mean() < 0.1


def test_the_cross_device_check_compares_each_quality(tmp_path, photo_crop):
    """``bench.crossdevice`` (what a lent GPU runs) writes one file per quality, by
    default two coded at a reduced size (versions 8 and 9) and one at full size; written
    and checked on the same CPU, they decode to their reference pixels exactly."""
    from PIL import Image
    from aecodec.bench import crossdevice
    from aecodec.format import parse
    Image.fromarray(photo_crop).save(tmp_path / "crop.png")
    crossdevice.write(tmp_path / "out", [tmp_path / "crop.png"], "cpu")
    versions = [parse((tmp_path / "out" / f"crop-q{q}.aec").read_bytes()).version
                for q in crossdevice.DEFAULT_QUALITIES]
    assert versions == [11, 11, 11]          # the card names zero tables
    rows = crossdevice.check(tmp_path / "out")
    assert len(rows) == 3 and all(r["max_abs_diff"] == 0 for r in rows)
