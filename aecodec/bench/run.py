"""Rate-distortion benchmark runner: JSON per codec (CompressAI layout), per-image
CSV, RD plots with published anchors overlaid, and a BD-rate table against JPEG."""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .bdrate import bd_rate
from .codecs import BenchCodec
from .metrics import MS_SSIM_MIN_SIDE, ms_ssim, ms_ssim_db, psnr

CSV_FIELDS = ["codec", "quality", "image", "bytes", "bpp", "psnr-rgb", "ms-ssim-rgb",
              "encoding_time", "decoding_time"]


def load_images(files: list[Path]) -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8 array) per file: what ``measure`` takes. Refuses, before any
    work, an image too small for MS-SSIM, which every benchmark row reports."""
    images = [(f.name, np.asarray(Image.open(f).convert("RGB"))) for f in files]
    for name, rgb in images:
        h, w = rgb.shape[:2]
        if min(h, w) < MS_SSIM_MIN_SIDE:
            raise ValueError(f"{name} is {w}x{h}: MS-SSIM needs both sides at least {MS_SSIM_MIN_SIDE} pixels")
    return images


def measure(codec: BenchCodec, images: list[tuple[str, np.ndarray]], progress: bool = True) -> list[dict]:
    rows = []
    total = len(codec.qualities) * len(images)
    with tqdm(total=total, desc=codec.name, disable=not progress, leave=False) as bar:
        for q in codec.qualities:
            for name, rgb in images:
                t0 = time.perf_counter()
                data = codec.encode(rgb, q)
                t1 = time.perf_counter()
                out = codec.decode(data)
                t2 = time.perf_counter()
                h, w = rgb.shape[:2]
                rows.append({"codec": codec.name, "quality": q, "image": name, "bytes": len(data),
                             "bpp": len(data) * 8 / (w * h), "psnr-rgb": psnr(rgb, out),
                             "ms-ssim-rgb": ms_ssim(rgb, out), "encoding_time": t1 - t0,
                             "decoding_time": t2 - t1})
                bar.update()
    return rows


def summarize(codec: BenchCodec, rows: list[dict]) -> dict:
    """Per-quality means, in CompressAI's results layout."""
    keys = ["bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"]
    results = {k: [] for k in keys}
    for q in codec.qualities:
        sel = [r for r in rows if r["quality"] == q]
        for k in keys:
            results[k].append(float(np.mean([r[k] for r in sel])))
    order = np.argsort(results["bpp"])
    results = {k: [v[i] for i in order] for k, v in results.items()}
    results["quality"] = [codec.qualities[i] for i in order]
    return {"name": codec.name, "description": codec.description, "results": results}


def load_anchors(folder: Path | None) -> list[dict]:
    """Published curves, each once: the same numbers under two file names (a model
    measured on CPU and on CUDA, say) are one curve."""
    if folder is None or not Path(folder).is_dir():
        return []
    out, seen = [], set()
    for p in sorted(Path(folder).glob("*.json")):
        d = json.loads(p.read_text())
        if "results" in d and "bpp" in d["results"]:
            key = json.dumps({k: d["results"].get(k) for k in ("bpp", "psnr-rgb", "ms-ssim-rgb")})
            if key in seen:
                continue
            seen.add(key)
            d["file"] = p.name
            out.append(d)
    return out


def bd_percent(anchor: dict, test: dict) -> str:
    """BD-rate PSNR / MS-SSIM of ``test`` against ``anchor`` as text, e.g. "-34.2% / -31.6%"."""
    return " / ".join("n/a" if (v := bd(anchor, test, m)) is None else f"{100 * v:+.1f}%"
                      for m in ("psnr-rgb", "ms-ssim-rgb"))


def bd(anchor: dict, test: dict, metric: str) -> float | None:
    a, t = anchor["results"], test["results"]
    if metric not in a or metric not in t:
        return None
    qa, qt = a[metric], t[metric]
    if metric == "ms-ssim-rgb":
        qa, qt = [ms_ssim_db(v) for v in qa], [ms_ssim_db(v) for v in qt]
    try:
        return bd_rate(a["bpp"], qa, t["bpp"], qt)
    except ValueError:
        return None


def bd_table(results: dict[str, dict], anchors: list[dict], anchor_name: str = "jpeg") -> str:
    base = results[anchor_name]
    fmt = lambda v: "n/a" if v is None else f"{100 * v:+.1f}%"
    lines = [f"| codec | BD-rate PSNR vs {anchor_name} | BD-rate MS-SSIM vs {anchor_name} | "
             "bpp range | encode ms | decode ms |", "|---|---|---|---|---|---|"]
    for name, res in results.items():
        r = res["results"]
        lines.append(f"| {name} | {fmt(bd(base, res, 'psnr-rgb'))} | {fmt(bd(base, res, 'ms-ssim-rgb'))} | "
                     f"{min(r['bpp']):.3f}-{max(r['bpp']):.3f} | {1000 * np.mean(r['encoding_time']):.0f} | "
                     f"{1000 * np.mean(r['decoding_time']):.0f} |")
    if anchors:
        lines += ["", "Published curves (measured elsewhere), against the JPEG measured here:", "",
                  "| curve | BD-rate PSNR | BD-rate MS-SSIM |", "|---|---|---|"]
        for a in anchors:
            lines.append(f"| {a.get('name', a['file'])} ({a['file']}) | {fmt(bd(base, a, 'psnr-rgb'))} | "
                         f"{fmt(bd(base, a, 'ms-ssim-rgb'))} |")
    return "\n".join(lines) + "\n"


OVERLAY = ("paper-bmshj2018-factorized.json", "paper-bmshj2018-hyperprior.json",
           "paper-mbt2018.json", "paper-cheng2020-checkerboard-6M_mse.json", "vtm.json")


# One colour per codec in every plot (matplotlib's tab10, fixed by name).
COLOURS = {"aecodec": "tab:red", "jpeg": "tab:gray", "webp": "tab:green", "avif": "tab:purple",
           "jpegxl": "tab:orange"}


def plot(results: dict[str, dict], anchors: list[dict], out_dir: Path, title: str) -> list[Path]:
    """RD plots. ``anchors`` are drawn only when given (the caller passes them only for
    the whole Kodak set, where those published curves were measured)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = []
    top = max(max(res["results"]["bpp"]) for res in results.values())
    for metric, label, fname in (("psnr-rgb", "PSNR (dB)", "rd-psnr.png"),
                                 ("ms-ssim-rgb", "MS-SSIM (dB)", "rd-msssim.png")):
        fig, ax = plt.subplots(figsize=(8, 6))
        conv = (lambda v: v) if metric == "psnr-rgb" else ms_ssim_db
        for a in anchors:
            if a["file"] in OVERLAY and metric in a["results"]:
                ax.plot(a["results"]["bpp"], [conv(v) for v in a["results"][metric]], "--", lw=1,
                        alpha=0.6, label=f"{a.get('name', a['file'])} (published, Kodak)")
        for name, res in results.items():
            r = res["results"]
            ax.plot(r["bpp"], [conv(v) for v in r[metric]], "o-", lw=2 if name == "aecodec" else 1.2,
                    ms=4, label=name, color=COLOURS.get(name))
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.set_xlim(0, top * 1.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"Rate-distortion on {title} ({label})")
        fig.tight_layout()
        fig.savefig(out_dir / fname, dpi=110)
        plt.close(fig)
        paths.append(out_dir / fname)
    return paths


def environment() -> dict:
    """What the numbers were measured on."""
    import os
    import platform
    import sys
    from importlib.metadata import PackageNotFoundError, version

    import torch
    versions = {}
    for pkg in ("aecodec", "torch", "numpy", "pillow", "constriction", "imagecodecs", "pytorch-msssim"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "python": sys.version.split()[0],
            "platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
            "versions": versions, "command": " ".join(sys.argv)}


def run(codecs: list[BenchCodec], files: list[Path], out_dir: Path, anchors_dir: Path | None,
        progress: bool = True, title: str | None = None) -> dict[str, dict]:
    """Measure, then write JSON, CSV, plots and the BD table. Published curves (all 24
    Kodak photos) are overlaid and rated only when ``files`` are those 24 photos."""
    out_dir = Path(out_dir)
    if not files:
        raise ValueError("no images to measure")
    images = load_images(files)
    out_dir.mkdir(parents=True, exist_ok=True)
    whole_kodak = len(files) == 24 and all(f.name.startswith("kodim") for f in files)
    title = title or ("Kodak" if whole_kodak else f"{len(files)} images from {files[0].parent.name}")
    all_rows, results = [], {}
    for codec in codecs:
        rows = measure(codec, images, progress)
        all_rows += rows
        results[codec.name] = summarize(codec, rows)
        (out_dir / f"{codec.name}.json").write_text(json.dumps(results[codec.name], indent=2) + "\n")
    with open(out_dir / "per_image.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for r in all_rows:
            w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
    (out_dir / "environment.json").write_text(json.dumps(environment(), indent=2) + "\n")
    anchors = load_anchors(anchors_dir) if whole_kodak else []
    if "jpeg" in results:
        (out_dir / "bdrate.md").write_text(bd_table(results, anchors))
    plot(results, anchors, out_dir, title)
    return results
