"""Where aecodec's MS-SSIM goes, against JPEG at the same PSNR.

MS-SSIM per channel is a product over five scales, prod_s cs_s^w_s (the last scale's
term is the full SSIM), so -ln MS-SSIM splits exactly into one term -w_s ln cs_s per
scale. For each photo and quality this finds the Pillow JPEG quality whose PSNR is
closest to aecodec's and prints both codecs' terms, then (1 - cs) at each scale by
how busy the original is there (its local variance, in buckets): which scales and
which parts of the picture hold the gap (docs/TRAINING_LOG.md, Part 20).

    python -m aecodec.bench.msssim_terms [--images DIR] [--every 4] [--qualities 6,9,11]

Without ``--images`` it uses the held-out validation photos, never Kodak.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .metrics import MS_SSIM_MIN_SIDE, psnr

# pytorch_msssim's defaults (what the benchmarks report): 11-tap Gaussian of sigma 1.5,
# K = (0.01, 0.03), data range 255, the five scales' weights, 2x2 average pooling.
WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
VARIANCE_EDGES = (10, 30, 100, 300, 1000, 3000)


def _window() -> torch.Tensor:
    x = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-x ** 2 / (2 * 1.5 ** 2))
    return g / g.sum()


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Gaussian filter per channel, 'valid' as pytorch_msssim does."""
    g = _window().to(x)
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _maps(x: torch.Tensor, y: torch.Tensor):
    """(luminance term, cs, variance of x) maps of two [1, C, H, W] float64 images."""
    mx, my = _blur(x), _blur(y)
    sxx, syy, sxy = _blur(x * x) - mx * mx, _blur(y * y) - my * my, _blur(x * y) - mx * my
    luminance = (2 * mx * my + C1) / (mx * mx + my * my + C1)
    return luminance, (2 * sxy + C2) / (sxx + syy + C2), sxx


def _pyramid(reference: np.ndarray, decoded: np.ndarray):
    """Yield (scale, luminance, cs, variance of the reference) maps, scale 0 = full size."""
    x = torch.from_numpy(np.array(reference)).permute(2, 0, 1)[None].double()
    y = torch.from_numpy(np.array(decoded)).permute(2, 0, 1)[None].double()
    for s in range(len(WEIGHTS)):
        if s:
            pad = [d % 2 for d in x.shape[2:]]
            x, y = F.avg_pool2d(x, 2, padding=pad), F.avg_pool2d(y, 2, padding=pad)
        yield (s, *_maps(x, y))


def scale_terms(reference: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """-w_s ln(term_s) per scale and channel [5, 3] (uint8 HxWx3 images, each side over
    160 pixels): exp(-column sum) is each channel's MS-SSIM, whose mean over channels
    is what ``metrics.ms_ssim`` reports."""
    terms = []
    for s, luminance, cs, _ in _pyramid(reference, decoded):
        value = (luminance * cs if s == len(WEIGHTS) - 1 else cs).mean(dim=(2, 3))[0]
        terms.append(-WEIGHTS[s] * torch.log(torch.relu(value)).numpy())
    return np.array(terms)


def cs_by_variance(reference: np.ndarray, decoded: np.ndarray, scales=(0, 1, 2)) -> dict:
    """{scale: (pixels, sum of 1 - cs) per bucket of the reference's local variance
    (``VARIANCE_EDGES``, averaged over channels)}."""
    out = {}
    for s, _, cs, variance in _pyramid(reference, decoded):
        if s in scales:
            bucket = np.digitize(variance[0].mean(0).numpy(), VARIANCE_EDGES)
            loss = (1 - cs[0].mean(0)).numpy()
            n = len(VARIANCE_EDGES) + 1
            out[s] = (np.bincount(bucket.ravel(), minlength=n), np.bincount(bucket.ravel(), loss.ravel(), minlength=n))
    return out


def jpeg_at_psnr(rgb: np.ndarray, target: float) -> tuple[int, np.ndarray, int]:
    """(quality, decoded image, bytes) of the Pillow JPEG whose PSNR is closest to
    ``target`` (PSNR rises with quality: bisection over 1..100)."""
    def code(q):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=q)
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")), len(buf.getvalue())

    lo, hi = 1, 100
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if psnr(rgb, code(mid)[0]) < target else (lo, mid)
    best = min((lo, hi), key=lambda q: abs(psnr(rgb, code(q)[0]) - target))
    return (best, *code(best))


def main(argv=None):
    from ..codec import Codec
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", default=None, help="a folder of photos (default: the validation photos)")
    p.add_argument("--every", type=int, default=4, help="every n-th photo")
    p.add_argument("--qualities", default="6,9,11")
    p.add_argument("--weights", default=None)
    a = p.parse_args(argv)
    if a.images:
        files = sorted(f for f in Path(a.images).iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
        source = str(a.images)
    else:
        from ..train.data import validation_files
        files, source = validation_files(), "the validation split"
    files = files[::a.every]
    codec = Codec(a.weights, device="cpu")
    qualities = [int(q) for q in a.qualities.split(",")]
    terms = {q: [[], []] for q in qualities}
    buckets = {q: [{}, {}] for q in qualities}
    rows, measured = [], 0
    for f in files:
        rgb = codec.load(f).rgb
        if min(rgb.shape[:2]) < MS_SSIM_MIN_SIDE:
            print(f"skipping {f.name}: MS-SSIM needs each side at least {MS_SSIM_MIN_SIDE} pixels", file=sys.stderr)
            continue
        measured += 1
        pixels = rgb.shape[0] * rgb.shape[1]
        for q in qualities:
            data = codec.encode(rgb, q)
            ours = codec.decode_pixels(data).rgb
            jq, theirs, size = jpeg_at_psnr(rgb, psnr(rgb, ours))
            rows.append(f"| {f.name} | {q} | {len(data) * 8 / pixels:.3f} | {psnr(rgb, ours):.2f} "
                        f"| {jq} | {size * 8 / pixels:.3f} | {psnr(rgb, theirs):.2f} |")
            for k, decoded in enumerate((ours, theirs)):
                terms[q][k].append(scale_terms(rgb, decoded).mean(1))
                for s, (n, loss) in cs_by_variance(rgb, decoded).items():
                    acc = buckets[q][k].setdefault(s, [0, 0])
                    acc[0], acc[1] = acc[0] + n, acc[1] + loss
    if not measured:
        sys.exit(f"no photo with both sides at least {MS_SSIM_MIN_SIDE} pixels to measure")
    args = " ".join(argv if argv is not None else sys.argv[1:])
    print(f"# Where MS-SSIM goes, against JPEG at equal PSNR\n\nMade by `python -m aecodec.bench.msssim_terms "
          f"{args}`: {measured} photos from {source}, model {codec.model_id}.\n")
    print("| photo | quality | aecodec bpp | PSNR | JPEG quality | bpp | PSNR |\n|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\n-w ln(term) per scale x 1000 (mean over photos and channels; their sum is -ln MS-SSIM):\n")
    print("| quality | codec | " + " | ".join(f"scale {s + 1}" for s in range(len(WEIGHTS))) + " | sum |")
    print("|---|---|" + "---|" * (len(WEIGHTS) + 1))
    for q in qualities:
        for name, t in zip(("aecodec", "JPEG"), terms[q]):
            m = 1000 * np.mean(t, 0)
            print(f"| {q} | {name} | " + " | ".join(f"{v:.2f}" for v in m) + f" | {m.sum():.2f} |")
    edges = ["<" + str(VARIANCE_EDGES[0])] + [f"{a}-{b}" for a, b in zip(VARIANCE_EDGES, VARIANCE_EDGES[1:])] \
        + [">" + str(VARIANCE_EDGES[-1])]
    print("\nmean 1 - cs by the original's local variance, aecodec / JPEG (share of the map in brackets):\n")
    print("| quality | scale | " + " | ".join(edges) + " |\n|---|---|" + "---|" * len(edges))
    for q in qualities:
        for s in sorted(buckets[q][0]):
            (n, ours), (_, theirs) = buckets[q][0][s], buckets[q][1][s]
            cells = [f"{o / c:.4f} / {t / c:.4f} ({c / n.sum():.2f})" if c else "-" for c, o, t in zip(n, ours, theirs)]
            print(f"| {q} | {s + 1} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
