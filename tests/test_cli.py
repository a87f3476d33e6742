"""The command line, run in-process with click's CliRunner."""
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from aecodec import detail
from aecodec.cli import main


@pytest.fixture
def photo_png(tmp_path, photo_crop):
    path = tmp_path / "photo.png"
    Image.fromarray(photo_crop).save(path)
    return path


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def test_compress_decompress_info(photo_png):
    r = run("compress", photo_png, "-q", "3")
    assert r.exit_code == 0, r.output
    aec = photo_png.with_suffix(".aec")
    assert aec.is_file()
    r = run("info", aec)
    assert r.exit_code == 0 and "96x64" in r.output and "stages:         3" in r.output
    photo_png.unlink()
    r = run("decompress", aec)
    assert r.exit_code == 0, r.output
    assert Image.open(photo_png).size == (96, 64)


def test_never_overwrites_without_force(photo_png):
    aec = photo_png.with_suffix(".aec")
    aec.write_bytes(b"precious")
    r = run("compress", photo_png)
    assert r.exit_code == 1 and "--force" in r.output
    assert aec.read_bytes() == b"precious"
    assert run("compress", photo_png, "--force").exit_code == 0
    assert aec.read_bytes()[:4] == b"\x89AEC"


def test_bad_input_is_one_line_no_traceback_no_output(tmp_path):
    bad = tmp_path / "bad.aec"
    bad.write_bytes(b"\x89AEC" + b"\0" * 40)
    r = run("decompress", bad)
    assert r.exit_code == 1
    assert r.output.count("\n") == 1 and "Traceback" not in r.output and r.output.startswith("aecodec: error:")
    assert not (tmp_path / "bad.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.aec"]


def test_batch_reports_failures_and_carries_on(tmp_path, photo_png):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    out = tmp_path / "out"
    out.mkdir()
    r = run("compress", junk, photo_png, "-o", out)
    assert r.exit_code == 1
    assert "junk.png" in r.output and "1 of 2 files failed" in r.output
    assert (out / "photo.aec").is_file() and not (out / "junk.aec").exists()


def test_pipes(photo_png):
    r = CliRunner().invoke(main, ["compress", "-", "-o", "-", "-q", "2"], input=photo_png.read_bytes())
    assert r.exit_code == 0
    data = r.stdout_bytes
    assert data[:4] == b"\x89AEC"
    r = CliRunner().invoke(main, ["decompress", "-", "-o", "-"], input=data)
    assert r.exit_code == 0 and r.stdout_bytes[:4] == b"\x89PNG"


def test_truncate_command(tmp_path, photo_png):
    run("compress", photo_png, "-q", "8")
    aec = photo_png.with_suffix(".aec")
    small = tmp_path / "small.aec"
    budget = aec.stat().st_size // 2
    r = run("truncate", aec, "--max-bytes", budget, "-o", small)
    assert r.exit_code == 0, r.output
    assert small.stat().st_size <= budget


def test_missing_file_and_bad_quality(tmp_path):
    r = run("compress", tmp_path / "nope.png")
    assert r.exit_code == 1 and "no such" in r.output
    r = run("compress", tmp_path / "nope.png", "-q", "42")
    assert r.exit_code == 2


def test_max_bytes_and_bpp(photo_png, tmp_path):
    out = tmp_path / "b.aec"
    r = run("compress", photo_png, "--max-bytes", "0.5KB", "-o", out)
    assert r.exit_code == 0, r.output
    assert out.stat().st_size <= 500
    r = run("compress", photo_png, "--bpp", "1.5", "-o", out, "--force")
    assert r.exit_code == 0 and out.stat().st_size * 8 / (96 * 64) <= 1.5
    r = run("compress", photo_png, "--max-bytes", "lots", "-o", out, "--force")
    assert r.exit_code == 2 and "cannot read size" in r.output      # a usage error


def test_folders_recursive_skip_existing_and_summary(tmp_path, photo_crop):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(photo_crop).save(src / "a.png")
    Image.fromarray(photo_crop[:32, :40]).save(src / "sub" / "b.jpg")
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    r = run("compress", src, "-o", out, "--recursive", "-q", "2")
    assert r.exit_code == 0, r.output
    assert (out / "a.aec").is_file() and (out / "sub" / "b.aec").is_file()
    assert "2 files done" in r.output and "bpp" in r.output
    r = run("compress", src, "-o", out, "--recursive", "--skip-existing")
    assert r.exit_code == 0 and "2 skipped" in r.output
    r = run("decompress", out, "-o", tmp_path / "back", "--recursive")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "back" / "sub" / "b.png").size == (40, 32)
    r = run("compress", src, "-o", out)          # without --recursive: only the top level
    assert r.exit_code == 1 and "--force" in r.output


def test_parallel_jobs_give_the_same_files_and_report_failures(tmp_path, photo_crop):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        Image.fromarray(np.roll(photo_crop, 7 * i, axis=1)).save(src / f"p{i}.png")
    (src / "bad.png").write_bytes(b"not an image")
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    r1 = run("compress", src, "-o", serial, "-q", "3", "--jobs", "1")
    r2 = run("compress", src, "-o", parallel, "-q", "3", "--jobs", "2")
    for r in (r1, r2):
        assert r.exit_code == 1 and "bad.png" in r.output and "1 of 4 files failed" in r.output
        assert "3 files done" in r.output
    for i in range(3):
        assert (serial / f"p{i}.aec").read_bytes() == (parallel / f"p{i}.aec").read_bytes()
    assert not (parallel / "bad.aec").exists()
    r = run("decompress", parallel, "-o", tmp_path / "back", "--jobs", "2")
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "back").glob("*.png"))) == 3


def test_parallel_jobs_refuse_bad_weights_once_before_starting(tmp_path, photo_png):
    other = tmp_path / "second.png"
    other.write_bytes(photo_png.read_bytes())
    r = run("compress", photo_png, other, "-o", tmp_path / "out", "--jobs", "2",
            "--weights", tmp_path / "no-such-weights")
    assert r.exit_code == 3                       # a setup error, not a bad input
    assert r.output.count("aecodec: error:") == 1
    assert not (tmp_path / "out" / "second.aec").exists()


def test_batches_give_the_same_files_and_blame_the_right_file(tmp_path, photo_crop):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        Image.fromarray(np.roll(photo_crop, 5 * i, axis=0)).save(src / f"p{i}.png")
    Image.fromarray(photo_crop[:48, :80]).save(src / "q.png")      # another size, same batch
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (384, 576, 3), dtype=np.uint8)).save(src / "noise.png")
    (src / "bad.png").write_bytes(b"not an image")
    one, many = tmp_path / "one", tmp_path / "many"
    budget = ["--max-bytes", "400"]                # noise cannot fit even one stage
    r1 = run("compress", src, "-o", one, "-q", "4", "--batch", "1", *budget)
    r2 = run("compress", src, "-o", many, "-q", "4", "--batch", "6", *budget)
    for r in (r1, r2):
        assert r.exit_code == 1 and "2 of 6 files failed" in r.output, r.output
        assert "bad.png" in r.output and "noise.png" in r.output and "4 files done" in r.output
    for name in ("p0", "p1", "p2", "q"):
        assert (one / f"{name}.aec").read_bytes() == (many / f"{name}.aec").read_bytes()
    (many / "broken.aec").write_bytes((many / "p0.aec").read_bytes()[:-9])
    r = run("decompress", many, "-o", tmp_path / "back", "--batch", "5")
    assert r.exit_code == 1 and "broken.aec" in r.output and "4 files done" in r.output, r.output
    a = np.asarray(Image.open(tmp_path / "back" / "p1.png")).astype(int)
    run("decompress", many / "p1.aec", "-o", tmp_path / "p1-alone.png")
    b = np.asarray(Image.open(tmp_path / "p1-alone.png")).astype(int)
    assert np.abs(a - b).max() <= 1                # batched convolutions may round differently


def test_info_shows_the_detail_layer(photo_png):
    r = run("compress", photo_png, "-q", "13")
    assert r.exit_code == 0, r.output
    r = run("info", photo_png.with_suffix(".aec"))
    assert r.exit_code == 0 and "format version: 11" in r.output and "post-filter:" in r.output
    assert "held to intervals 32/8/19 (1/64 step)" in r.output
    from aecodec.codec import Codec
    assert f"stages:         3, coded with zero tables {Codec().zeros_id.hex()}\n" in r.output
    line = r.output.split("detail layer:")[1].splitlines()[0]
    assert " bytes" in line and line.endswith(", tilt 1.5 luma, 3 colour, colour x1.25, steps per block "
                                              f"(strength {detail.ADAPTIVE.strength}, floor {detail.ADAPTIVE.floor})"
                                              ", near-frequency contexts")
