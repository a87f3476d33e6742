"""Choose the encoder-side search settings (beam, bit-cost scale) on held-out photos.

Decoding never depends on them, so they can change without retraining and without
making old files undecodable; they live in the model card's config. Measured on the
held-out validation photos, never on Kodak, against JPEG on the same photos:

    python -m aecodec.bench.search --settings 1:1.0,3:0.8,4:0.8 --every 3
"""
from __future__ import annotations

import argparse

from .codecs import AecBench, PillowBench
from .run import bd_percent, load_images, measure, summarize

QUALITIES = (1, 3, 5, 7, 9, 11)


def main(argv=None):
    from ..codec import Codec
    from ..train.data import validation_files
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--settings", default="1:1.0,3:0.8", help="beam:scale pairs, the first is the reference")
    p.add_argument("--every", type=int, default=3, help="every n-th validation photo")
    p.add_argument("--weights", default=None, help="a weights folder (default: the shipped model)")
    a = p.parse_args(argv)
    files = validation_files()[::a.every]
    images = load_images(files)
    jpeg = PillowBench("JPEG")
    anchor = summarize(jpeg, measure(jpeg, images, progress=False))
    codec = Codec(a.weights, device="cpu")
    bench = AecBench(codec)
    bench.qualities = QUALITIES
    print(f"{len(images)} validation photos; BD-rate, PSNR / MS-SSIM")
    print("| beam | scale | vs JPEG | vs the first setting | bpp at q1 / q11 |")
    print("|---|---|---|---|---|")
    reference = None
    for item in a.settings.split(","):
        beam, scale = item.split(":")
        codec.set_search(int(beam), float(scale))
        result = summarize(bench, measure(bench, images, progress=False))
        reference = reference or result
        bpp = result["results"]["bpp"]
        print(f"| {beam} | {scale} | {bd_percent(anchor, result)} | {bd_percent(reference, result)} "
              f"| {bpp[0]:.3f} / {bpp[-1]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
