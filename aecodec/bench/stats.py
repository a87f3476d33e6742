"""Per-stage statistics of the shipped model on a folder of images: what each RVQ
stage costs after entropy coding (bits per index against log2 K), how the codebooks
are used (perplexity, codes in use), and what each stage buys in PSNR (base image
only: every stage of one search over all stages, no detail layer)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from .metrics import psnr
from ..imageio import list_images
from .table import markdown_table


def stage_report(codec, files: list[Path]) -> list[dict]:
    cfg = codec.weights.config
    stages = cfg.stages
    coded_bits = np.zeros(stages)
    n_indices = np.zeros(stages)
    hist = np.zeros((stages, cfg.groups, cfg.codes))
    scores = np.zeros(stages)
    for f in files:
        rgb = np.asarray(Image.open(f).convert("RGB"))
        indices = codec.indices([rgb], stages)[0]
        for s in range(stages):
            coded_bits[s] += 8 * len(codec.entropy_code(indices[:s + 1])[s])
            n_indices[s] += indices[s].size
            for g in range(cfg.groups):
                hist[s, g] += np.bincount(indices[s, g].ravel(), minlength=cfg.codes)
            scores[s] += psnr(rgb, codec.synthesize(indices[:s + 1], *rgb.shape[:2]))
    report = []
    for s in range(stages):
        p = hist[s] / hist[s].sum(-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = -np.nansum(np.where(p > 0, p * np.log2(p), 0), axis=-1)
        report.append({
            "stage": s + 1,
            "bits_per_index": round(coded_bits[s] / n_indices[s], 4),
            "log2_K": math.log2(cfg.codes),
            "zeroth_order_entropy": round(float(ent.mean()), 4),
            "perplexity": round(float((2 ** ent).mean()), 2),
            "codes_used": round(float((hist[s] > 0).sum(-1).mean()), 1),
            "nonzero_fraction": round(float(1 - p[:, 0].mean()), 4),
            "mean_psnr_with_stages_1_to_s": round(scores[s] / len(files), 3),
        })
    return report


def to_markdown(report: list[dict]) -> str:
    headers = ["stage", "coded bits/index", "log2 K", "0th-order entropy", "perplexity (mean over groups)",
               "codes used (of K)", "non-zero", "PSNR with stages 1..s"]
    return markdown_table(headers, [
        [str(r["stage"]), f"{r['bits_per_index']:.3f}", f"{r['log2_K']:.0f}", f"{r['zeroth_order_entropy']:.3f}",
         f"{r['perplexity']:.2f}", f"{r['codes_used']:.1f}", f"{100 * r['nonzero_fraction']:.1f}%",
         f"{r['mean_psnr_with_stages_1_to_s']:.2f}"] for r in report])


def main(argv=None):
    import argparse
    from ..codec import Codec
    ap = argparse.ArgumentParser(description="Per-stage bits and codebook usage of the shipped model.")
    ap.add_argument("--images", default="../shared/data/kodak")
    ap.add_argument("--out", default="benchmarks/results/kodak")
    ap.add_argument("--limit", type=int, default=None)
    a = ap.parse_args(argv)
    report = stage_report(Codec(device="cpu"), list_images(Path(a.images))[:a.limit])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stages.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "stages.md").write_text(to_markdown(report))
    print(to_markdown(report))


if __name__ == "__main__":
    main()
