"""Peak memory of decoding, per megapixel: each file is decoded alone in a fresh
process, and the process's peak RSS after loading the model is subtracted, so what
is left is what the image itself costs.

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
import torch


def peak_mb():
    # VmHWM is this process's own peak: ru_maxrss would carry the parent's across exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

torch.set_num_threads(int(sys.argv[2]))
from aecodec.codec import Codec
codec = Codec(device="cpu", max_pixels=None)
codec.decode_pixels(codec.encode(__import__("numpy").zeros((64, 64, 3), "uint8"), 1))   # warm
base = peak_mb()
data = open(sys.argv[1], "rb").read()
t = time.perf_counter()
codec.decode_pixels(data)
print(json.dumps({"decode_s": time.perf_counter() - t, "model_rss_mb": base,
                  "peak_rss_mb": peak_mb()}))
"""


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", default="../shared/data/kodak/kodim23.png")
    p.add_argument("--sizes", default="1,4,12")
    p.add_argument("--qualities", default="7,11")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/memory")
    a = p.parse_args(argv)
    import numpy as np
    from PIL import Image
    from ..codec import Codec
    codec = Codec(device="cpu", max_pixels=None)
    src = Image.open(a.image).convert("RGB")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mp in (float(s) for s in a.sizes.split(",")):
            scale = (mp * 1e6 / (src.width * src.height)) ** 0.5
            rgb = np.asarray(src.resize((round(src.width * scale), round(src.height * scale)),
                                        Image.Resampling.BICUBIC))
            for q in (int(v) for v in a.qualities.split(",")):
                path = Path(tmp) / f"{mp}-{q}.aec"
                path.write_bytes(codec.encode(rgb, q))
                out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(a.threads)],
                                     capture_output=True, text=True, check=True)
                d = json.loads(out.stdout.strip().splitlines()[-1])
                pixels = rgb.shape[0] * rgb.shape[1]
                d.update({"megapixels": pixels / 1e6, "width": rgb.shape[1], "height": rgb.shape[0],
                          "quality": q, "bytes": path.stat().st_size,
                          "bytes_per_pixel": (d["peak_rss_mb"] - d["model_rss_mb"]) * 2 ** 20 / pixels})
                rows.append(d)
                print(json.dumps(d), flush=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "decode-memory.json").write_text(json.dumps(rows, indent=2) + "\n")
    table = markdown_table(["MP", "size", "quality", "file bytes", "decode s", "RSS after model load MB",
                            "peak RSS MB", "above the model, bytes per pixel"],
                           [[f"{r['megapixels']:.2f}", f"{r['width']}x{r['height']}", str(r["quality"]),
                             str(r["bytes"]), f"{r['decode_s']:.2f}", f"{r['model_rss_mb']:.0f}",
                             f"{r['peak_rss_mb']:.0f}", f"{r['bytes_per_pixel']:.1f}"] for r in rows])
    (out / "decode-memory.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
