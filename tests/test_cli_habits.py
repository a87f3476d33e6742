"""What cwebp / cjxl / avifenc users expect of the command line (issues 15-17)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import aecodec
from aecodec import cli
from aecodec.cli import main


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


@pytest.fixture
def photo_png(tmp_path, photo_crop):
    path = tmp_path / "photo.png"
    Image.fromarray(photo_crop).save(path)
    return path


def test_one_input_into_a_new_folder_named_with_a_slash(tmp_path, photo_png):
    r = run("compress", photo_png, "-o", f"{tmp_path / 'newdir'}/", "-q", "2")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "newdir" / "photo.aec").is_file()
    r = run("decompress", tmp_path / "newdir" / "photo.aec", "-o", f"{tmp_path / 'back'}/")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "back" / "photo.png").is_file()


def test_several_inputs_into_a_file_name_are_refused(tmp_path, photo_png):
    other = tmp_path / "b.png"
    other.write_bytes(photo_png.read_bytes())
    r = run("compress", photo_png, other, "-o", tmp_path / "single.aec")
    assert r.exit_code == 2 and "folder" in r.output
    assert not (tmp_path / "single.aec").exists()


def test_colliding_outputs_are_refused_before_any_work(tmp_path, photo_crop):
    src = tmp_path / "src"
    src.mkdir()
    for ext in ("png", "bmp", "tif"):
        Image.fromarray(photo_crop).save(src / f"p.{ext}")
    r = run("compress", src, "-o", tmp_path / "out", "--force")
    assert r.exit_code == 2 and "both be written" in r.output
    assert not (tmp_path / "out").exists()


def test_output_format_follows_the_output_name(tmp_path, photo_png):
    aec = tmp_path / "x.aec"
    assert run("compress", photo_png, "-o", aec, "-q", "3").exit_code == 0
    for name, fmt in (("y.jpg", "JPEG"), ("y.webp", "WEBP"), ("y.tif", "TIFF"), ("y.png", "PNG")):
        r = run("decompress", aec, "-o", tmp_path / name)
        assert r.exit_code == 0, r.output
        assert Image.open(tmp_path / name).format == fmt
    r = run("decompress", aec, "-o", tmp_path / "z.png", "--format", "webp")
    assert r.exit_code == 2 and "contradicts" in r.output
    r = run("compress", photo_png, "-o", tmp_path / "z.png")
    assert r.exit_code == 2 and ".aec" in r.output and not (tmp_path / "z.png").exists()


@pytest.mark.parametrize("fmt,ok", [("jpg", True), ("JPEG", True), ("tiff", True), ("", False),
                                    ("nonsense", False), ("aec", False)])
def test_format_names(tmp_path, photo_png, fmt, ok):
    aec = tmp_path / "x.aec"
    run("compress", photo_png, "-o", aec, "-q", "2")
    r = run("decompress", aec, "--format", fmt, "-o", f"{tmp_path / 'out'}/")
    if ok:
        assert r.exit_code == 0, r.output
    else:
        assert r.exit_code == 2 and r.output.startswith("aecodec: error:") and "Traceback" not in r.output


def test_jpeg_of_an_rgba_file_fails_alone_with_one_line(tmp_path, photo_crop):
    rgba = np.dstack([photo_crop, np.full(photo_crop.shape[:2], 200, np.uint8)])
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.aec").write_bytes(aecodec.encode(rgba, 2))
    (src / "b.aec").write_bytes(aecodec.encode(photo_crop, 2))
    r = run("decompress", src, "--format", "jpg", "-o", tmp_path / "out")
    assert r.exit_code == 1 and "a.aec" in r.output and "Traceback" not in r.output
    assert (tmp_path / "out" / "b.jpg").is_file() and not (tmp_path / "out" / "a.jpg").exists()


@pytest.mark.parametrize("args", [["--bpp", "inf"], ["--bpp", "nan"], ["--bpp", "-1"], ["--max-bytes", "inf"],
                                  ["--max-bytes", "nan"], ["--max-bytes", "0"], ["--max-bytes", "1e400"]])
def test_non_finite_budgets_are_usage_errors(photo_png, args):
    r = run("compress", photo_png, *args)
    assert r.exit_code == 2 and r.output.startswith("aecodec: error:") and "Traceback" not in r.output


def test_output_under_a_file_fails_cleanly_and_makes_no_folders(tmp_path, photo_png):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("compress", photo_png, "-o", f"{blocker / 'sub'}/")
    assert r.exit_code == 1 and "is a file" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "photo.png"]


def test_a_failing_input_leaves_no_empty_folder(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    r = run("compress", junk, "-o", f"{tmp_path / 'out' / 'deep'}/")
    assert r.exit_code == 1
    assert not (tmp_path / "out").exists()


def test_binary_output_to_a_terminal_is_refused(photo_png, monkeypatch):
    monkeypatch.setattr(cli, "_stdout_is_terminal", lambda: True)
    r = CliRunner().invoke(main, ["compress", "-"], input=photo_png.read_bytes())
    assert r.exit_code == 2 and "terminal" in r.output


def test_bomb_on_stdin_is_one_line(monkeypatch):
    import io
    buf = io.BytesIO()
    Image.new("L", (4000, 4000)).save(buf, "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)
    r = CliRunner().invoke(main, ["compress", "-", "-o", "-"], input=buf.getvalue())
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "Traceback" not in r.output


def test_summary_line_quiet_and_verbose(tmp_path, photo_png):
    r = run("compress", photo_png, "-q", "4", "-o", tmp_path / "a.aec")
    assert r.exit_code == 0
    line = r.output.strip()
    assert line.startswith("photo.png: 96x64 -> ") and "bpp" in line and line.endswith("q4")
    r = run("compress", photo_png, "-q", "4", "-o", tmp_path / "b.aec", "--quiet")
    assert r.exit_code == 0 and r.output == ""
    r = run("compress", photo_png, "-q", "4", "-o", tmp_path / "c.aec", "-v")
    assert "1 files done" in r.output


def test_exit_codes_are_in_the_help():
    r = run("--help")
    assert r.exit_code == 0 and "Exit codes" in r.output and "130" in r.output


def test_device_errors_speak_cli(photo_png):
    r = run("compress", photo_png, "--device", "gpu")
    assert r.exit_code == 2 and "auto, cpu, cuda" in r.output and "xpu" not in r.output
    import torch
    if not torch.cuda.is_available():
        r = run("compress", photo_png, "--device", "cuda")
        assert r.exit_code == 3 and "--device cpu" in r.output and "device='cpu'" not in r.output


def test_truncate_takes_sizes_and_defaults_its_output(tmp_path, photo_png):
    aec = tmp_path / "photo.aec"
    run("compress", photo_png, "-q", "8", "-o", aec)
    r = run("truncate", aec, "--max-bytes", "0.6KB")
    assert r.exit_code == 0, r.output
    out = tmp_path / "photo.truncated.aec"
    assert out.is_file() and out.stat().st_size <= 600
    assert run("truncate", aec, "--max-bytes", "0.6KB").exit_code == 1      # exists: --force
    assert run("truncate", aec, "--max-bytes", "inf").exit_code == 2


def test_info_several_files_json_and_quality(tmp_path, photo_png):
    a, b = tmp_path / "a.aec", tmp_path / "b.aec"
    run("compress", photo_png, "-q", "3", "-o", a)
    run("compress", photo_png, "-q", str(max(aecodec.QUALITIES)), "-o", b)
    r = run("info", a, b)
    assert r.exit_code == 0 and "quality:        3" in r.output and f"quality:        {max(aecodec.QUALITIES)}" in r.output
    r = run("info", a, b, "--json")
    got = json.loads(r.output)
    assert [d["quality"] for d in got] == [3, max(aecodec.QUALITIES)]
    assert aecodec.info(a.read_bytes())["quality"] == 3 == aecodec.info(a)["quality"]
    r = run("info", a, tmp_path / "missing.aec")
    assert r.exit_code == 1 and "missing.aec" in r.output and "quality:        3" in r.output


def test_reencoding_an_aec_file_warns(tmp_path, photo_png):
    aec = tmp_path / "x.aec"
    run("compress", photo_png, "-q", "3", "-o", aec)
    renamed = tmp_path / "y.png"
    renamed.write_bytes(aec.read_bytes())
    r = run("compress", renamed, "-o", tmp_path / "z.aec")
    assert r.exit_code == 0 and "already an .aec file" in r.output


def test_folder_without_recursive_says_what_it_skipped(tmp_path, photo_crop):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(photo_crop).save(src / "a.png")
    Image.fromarray(photo_crop).save(src / "sub" / "b.png")
    r = run("compress", src, "-o", tmp_path / "out", "-q", "2")
    assert r.exit_code == 0 and "1 subfolder(s) not searched" in r.output


def _extras(monkeypatch, present: bool):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: (
        (real("json") if present else None) if name in ("pytorch_msssim", "matplotlib", "scipy")
        else real(name, *a)))


def test_bench_says_what_to_install_before_any_work(tmp_path, monkeypatch):
    _extras(monkeypatch, present=False)
    r = run("bench", "--images", tmp_path, "--out", tmp_path / "results", "--codecs", "jpeg")
    assert r.exit_code == 1 and 'pip install "aecodec[bench]"' in r.output
    assert not (tmp_path / "results").exists()


def test_bench_will_not_overwrite_results(tmp_path, monkeypatch):
    _extras(monkeypatch, present=True)
    out = tmp_path / "results"
    out.mkdir()
    (out / "aecodec.json").write_text("{}")
    r = run("bench", "--images", tmp_path, "--out", out, "--codecs", "jpeg")
    assert r.exit_code == 1 and "--force" in r.output
    assert (out / "aecodec.json").read_text() == "{}"


def test_bench_refuses_an_image_too_small_for_ms_ssim_before_any_work(tmp_path, monkeypatch, photo_large):
    _extras(monkeypatch, present=True)
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(photo_large[:200, :200]).save(images / "big.png")
    Image.fromarray(photo_large[:160, :200]).save(images / "thumb.png")
    out = tmp_path / "results"
    r = run("bench", "--images", images, "--out", out, "--codecs", "jpeg")
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == \
        "aecodec: error: thumb.png is 200x160: MS-SSIM needs both sides at least 161 pixels"
    assert not out.exists()


def test_lossless_and_jpeg_style_quality_are_refused_by_the_pillow_plugin(tmp_path, photo_crop):
    im = Image.fromarray(photo_crop)
    with pytest.raises(ValueError, match="lossy"):
        im.save(tmp_path / "a.aec", lossless=True)
    with pytest.raises(ValueError, match="0-100"):
        im.save(tmp_path / "b.aec", quality=85)
    assert not (tmp_path / "b.aec").exists() or (tmp_path / "b.aec").stat().st_size == 0
