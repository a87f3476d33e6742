"""Peak memory of encoding and of decoding, per megapixel.

Each encode and each decode runs alone in a fresh process; the process's peak RSS
after loading the model (and running it once on a small image) is subtracted, so
what is left is what the image itself costs. A straight line through the sizes
larger than one tile splits that into a fixed part (the tile's working memory: the
networks run in tiles of at most ``tile`` latent cells a side, so below that size the
working memory grows with the image) and a part per pixel.

    python -m aecodec.bench.memory [--image ../shared/data/kodak/kodim23.png] [--sizes 1,4,12]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .table import markdown_table

_CHILD = r"""
import json, sys, time
import numpy as np
import torch


def peak_mb():
    # VmHWM is this process's own peak: ru_maxrss would carry the parent's across exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

job, src, dst, quality, threads, tile = sys.argv[1:7]
torch.set_num_threads(int(threads))
from aecodec.codec import Codec
codec = Codec(device="cpu", max_pixels=None, tile=int(tile))
codec.decode_pixels(codec.encode(np.zeros((64, 64, 3), "uint8"), 11))   # warm: networks and detail layer
base = peak_mb()
t = time.perf_counter()
if job == "encode":
    rgb = np.load(src)
    base += rgb.nbytes / 2 ** 20          # the caller's image is not the encoder's cost
    open(dst, "wb").write(codec.encode(rgb, int(quality)))
else:
    codec.decode_pixels(open(src, "rb").read())
print(json.dumps({"seconds": time.perf_counter() - t, "model_rss_mb": base, "peak_rss_mb": peak_mb(),
                  "stride": codec.model.stride}))
"""


def _run(job: str, src: Path, dst: Path, quality: int, threads: int, tile: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, job, str(src), str(dst), str(quality), str(threads),
                          str(tile)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares (fixed MB, bytes per pixel) of peak MB against pixels."""
    import numpy as np
    pixels, mb = np.array(points, dtype=float).reshape(-1, 2).T
    if len(pixels) < 2:
        return float("nan"), float("nan")
    slope, fixed = np.polyfit(pixels, mb, 1)
    return float(fixed), float(slope * 2 ** 20)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", default="../shared/data/kodak/kodim23.png")
    p.add_argument("--sizes", default="1,4,12")
    p.add_argument("--qualities", default="7,11")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tile", type=int, default=None, help="tile side in latent cells (default: the codec's)")
    p.add_argument("--out", default="benchmarks/results/memory")
    a = p.parse_args(argv)
    import numpy as np
    from PIL import Image
    from ..model.tiling import DEFAULT_TILE
    tile = a.tile or DEFAULT_TILE
    src = Image.open(a.image).convert("RGB")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mp in (float(s) for s in a.sizes.split(",")):
            scale = (mp * 1e6 / (src.width * src.height)) ** 0.5
            rgb = np.asarray(src.resize((round(src.width * scale), round(src.height * scale)),
                                        Image.Resampling.BICUBIC))
            raw = Path(tmp) / f"{mp}.npy"
            np.save(raw, rgb)
            for q in (int(v) for v in a.qualities.split(",")):
                path = Path(tmp) / f"{mp}-{q}.aec"
                for job in ("encode", "decode"):
                    d = _run(job, raw if job == "encode" else path, path, q, a.threads, tile)
                    pixels = rgb.shape[0] * rgb.shape[1]
                    d.update({"job": job, "megapixels": pixels / 1e6, "width": rgb.shape[1],
                              "height": rgb.shape[0], "quality": q, "bytes": path.stat().st_size, "tile": tile,
                              "above_model_mb": d["peak_rss_mb"] - d["model_rss_mb"]})
                    rows.append(d)
                    print(json.dumps(d), flush=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    fits = []
    for job in ("encode", "decode"):
        for q in sorted({r["quality"] for r in rows}):
            fixed, per_pixel = fit_line([(r["megapixels"] * 1e6, r["above_model_mb"]) for r in rows
                                         if r["job"] == job and r["quality"] == q
                                         and r["megapixels"] * 1e6 > (tile * r["stride"]) ** 2])
            fits.append({"job": job, "quality": q, "fixed_mb": fixed, "bytes_per_pixel": per_pixel})
    (out / "memory.json").write_text(json.dumps({"runs": rows, "fits": fits}, indent=2) + "\n")
    text = markdown_table(
        ["job", "quality", "MP", "size", "file bytes", "seconds", "RSS after model load MB",
         "peak RSS MB", "above the model MB"],
        [[r["job"], str(r["quality"]), f"{r['megapixels']:.2f}", f"{r['width']}x{r['height']}", str(r["bytes"]),
          f"{r['seconds']:.2f}", f"{r['model_rss_mb']:.0f}", f"{r['peak_rss_mb']:.0f}",
          f"{r['above_model_mb']:.0f}"] for r in rows])
    text += (f"\nA line through the sizes larger than one tile ({tile} latent cells a side; least "
             "squares): memory above the model = fixed + bytes per pixel x pixels.\n\n")
    text += markdown_table(["job", "quality", "fixed MB (tile working memory)", "bytes per pixel"],
                           [[f["job"], str(f["quality"]), f"{f['fixed_mb']:.0f}", f"{f['bytes_per_pixel']:.1f}"]
                            for f in fits])
    (out / "memory.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
