"""Speed and memory: encode/decode time, megapixels per second, peak memory and the
share of time spent in entropy coding, at several image sizes.

Each size runs in a fresh subprocess so its peak resident memory is its own.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .table import markdown_table

_CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from PIL import Image
from aecodec.codec import Codec
from aecodec.format import parse

src, megapixels, quality, device, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
name = sys.argv[6]
torch.set_num_threads(threads)
im = Image.open(src).convert("RGB")
scale = (megapixels * 1e6 / (im.width * im.height)) ** 0.5
im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BICUBIC)
rgb = np.asarray(im)
if name != "aecodec":
    from aecodec.bench.codecs import default_codecs
    other = default_codecs([name])[0]
    q = other.qualities[len(other.qualities) // 2]
    other.encode(rgb[:64, :64], q)
    t0 = time.perf_counter(); data = other.encode(rgb, q); t1 = time.perf_counter()
    other.decode(data); t2 = time.perf_counter()
    print(json.dumps({"codec": name, "megapixels": rgb.shape[0] * rgb.shape[1] / 1e6, "width": rgb.shape[1],
                      "height": rgb.shape[0], "quality": q, "device": "cpu", "threads": threads,
                      "bytes": len(data), "encode_s": t1 - t0, "decode_s": t2 - t1,
                      "entropy_encode_s": None, "entropy_decode_s": None,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    sys.exit(0)
codec = Codec(device=device, max_pixels=None)
codec.encode(rgb[:64, :64], quality)                       # warm-up
t0 = time.perf_counter(); data = codec.encode(rgb, quality); t1 = time.perf_counter()
out = codec.decode_pixels(data); t2 = time.perf_counter()
# Entropy coding alone, on indices of the quality's stages (at the photo's own size).
indices = codec.indices([rgb], codec.ladder[quality - 1].stages)[0]
t3 = time.perf_counter()
payloads = codec.entropy_code(indices)
t4 = time.perf_counter()
codec.entropy_decode(payloads, rgb.shape[0], rgb.shape[1])
t5 = time.perf_counter()
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"codec": "aecodec", "megapixels": rgb.shape[0] * rgb.shape[1] / 1e6, "width": rgb.shape[1], "height": rgb.shape[0],
                  "quality": quality, "device": device, "threads": threads, "bytes": len(data),
                  "encode_s": t1 - t0, "decode_s": t2 - t1,
                  "entropy_encode_s": t4 - t3, "entropy_decode_s": t5 - t4,
                  "peak_rss_mb": peak_mb}))
"""


def measure(src: Path, megapixels: float, quality: int, device: str = "cpu", threads: int = 2,
            codec: str = "aecodec") -> dict:
    r = subprocess.run([sys.executable, "-c", _CHILD, str(src), str(megapixels), str(quality), device,
                        str(threads), codec], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"speed run at {megapixels} MP failed: {r.stderr.strip().splitlines()[-1:]}")
    d = json.loads(r.stdout.strip().splitlines()[-1])
    d["encode_mp_per_s"] = d["megapixels"] / d["encode_s"]
    d["decode_mp_per_s"] = d["megapixels"] / d["decode_s"]
    if d["entropy_encode_s"] is not None:
        d["entropy_share_encode"] = d["entropy_encode_s"] / d["encode_s"]
        d["entropy_share_decode"] = d["entropy_decode_s"] / d["decode_s"]
    return d


def to_markdown(rows: list[dict]) -> str:
    headers = ["codec", "quality", "MP", "size", "device, threads", "encode s", "decode s", "enc MP/s",
               "dec MP/s", "entropy share enc / dec", "peak RSS MB"]
    cells = []
    for r in rows:
        share = (f"{100 * r['entropy_share_encode']:.0f}% / {100 * r['entropy_share_decode']:.0f}%"
                 if "entropy_share_encode" in r else "n/a")
        cells.append([str(r["codec"]), str(r["quality"]), f"{r['megapixels']:.2f}", f"{r['width']}x{r['height']}",
                      f"{r['device']}, {r['threads']}", f"{r['encode_s']:.2f}", f"{r['decode_s']:.2f}",
                      f"{r['encode_mp_per_s']:.2f}", f"{r['decode_mp_per_s']:.2f}", share,
                      f"{r['peak_rss_mb']:.0f}"])
    return markdown_table(headers, cells)


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="aecodec speed and memory at several image sizes.")
    ap.add_argument("--image", default="../shared/data/kodak/kodim23.png")
    ap.add_argument("--sizes", default="0.25,1,4,12", help="megapixels, comma-separated")
    ap.add_argument("--quality", type=int, default=None, help="default: the middle quality")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--codecs", default="aecodec,jpeg,webp,avif,jpegxl",
                    help="others run on the CPU at their middle quality setting")
    ap.add_argument("--out", default="benchmarks/results/speed")
    a = ap.parse_args(argv)
    from .. import QUALITIES
    quality = a.quality or QUALITIES[len(QUALITIES) // 2]
    rows = [measure(Path(a.image), float(mp), quality, a.device, a.threads, name)
            for name in a.codecs.split(",") for mp in a.sizes.split(",")]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"speed-{a.device}.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / f"speed-{a.device}.md").write_text(to_markdown(rows))
    print(to_markdown(rows))


if __name__ == "__main__":
    main()
