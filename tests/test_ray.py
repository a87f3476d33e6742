"""Batch compression on Ray Data, against a local cluster the test starts itself."""
import io

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray", reason='the Ray path is an extra: pip install "aecodec[ray]"')

import aecodec
from aecodec import distributed


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _close_to_local(codec, remote: bytes, local: bytes) -> None:
    """The encoder network is float32, and the workers run it on another thread count:
    a near-tie codeword may go the other way (decoding, in contrast, is exact)."""
    assert aecodec.info(remote)["stages"] == aecodec.info(local)["stages"]
    assert abs(len(remote) - len(local)) <= 0.05 * len(local) + 8
    a, b = codec.decode_pixels(remote).rgb.astype(int), codec.decode_pixels(local).rgb.astype(int)
    assert a.shape == b.shape and np.abs(a - b).mean() < 1.0


@pytest.fixture
def folder(tmp_path, photo_crop):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        Image.fromarray(np.roll(photo_crop, 11 * i, axis=1)).save(src / f"p{i}.png")
    (src / "bad.png").write_bytes(b"not an image")
    return src


def test_folder_round_trip_reports_failures_per_file(local_ray, folder, tmp_path, codec):
    pairs = [(str(p), str(tmp_path / "out" / (p.stem + ".aec"))) for p in sorted(folder.iterdir())]
    report = distributed.compress_pairs(pairs, quality=3, workers=2, batch_size=2)
    assert [r["source"] for r in report] == [s for s, _ in pairs]
    failed = [r for r in report if r["error"]]
    assert [r["source"] for r in failed] == [str(folder / "bad.png")]
    for r in report:
        if not r["error"]:                           # what the codec in this process writes, near enough
            _close_to_local(codec, open(r["target"], "rb").read(), codec.encode(r["source"], 3))
    back = [(t, t.replace(".aec", ".png")) for _, t in pairs if not t.endswith("bad.aec")]
    report = distributed.decompress_pairs(back, workers=2)
    assert all(r["error"] is None for r in report)
    assert Image.open(back[0][1]).size == (96, 64)


def test_dataset_of_bytes(local_ray, folder, codec):
    items = [{"bytes": p.read_bytes(), "name": p.name} for p in sorted(folder.iterdir())]
    ds = distributed.compress_dataset(ray.data.from_items(items), quality=2, workers=2)
    rows = {r["name"]: r for r in ds.take_all()}
    assert rows["bad.png"]["error"] and rows["bad.png"]["result"] == b""
    good = rows["p1.png"]
    assert good["error"] == ""
    source = next(i["bytes"] for i in items if i["name"] == "p1.png")
    _close_to_local(codec, good["result"], codec.encode(io.BytesIO(source), 2))
    back = distributed.decompress_dataset(ray.data.from_items([{"bytes": good["result"]}]), workers=1)
    png = back.take_all()[0]["result"]
    assert Image.open(io.BytesIO(png)).size == (96, 64)


def test_cli_switch(local_ray, folder, tmp_path):
    from click.testing import CliRunner
    from aecodec.cli import main
    r = CliRunner().invoke(main, ["compress", str(folder), "-o", str(tmp_path / "out"), "-q", "2", "--ray",
                                  "--jobs", "2"])
    assert r.exit_code == 1 and "bad.png" in r.output and "5 files done" in r.output, r.output
    assert len(list((tmp_path / "out").glob("*.aec"))) == 5
