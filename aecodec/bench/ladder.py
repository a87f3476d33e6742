"""Choose the quality ladder (RVQ stages, detail step per quality) on held-out photos.

Measures every (stages, step) pair of a grid on the validation photos (never Kodak),
prints their mean bpp / PSNR / MS-SSIM, then the BD-rate against JPEG on the same
photos of the model card's ladder and of any ``--ladder`` candidates, and of each
against the plain ladder (quality = stages, no detail layer) on the range they share:

    python -m aecodec.bench.ladder --every 2 --ladder 1:0,2:0,...,8:24,8:12

The ladder is encoder policy (the decoder reads stages and step from the file), so
it lives in the model card's config and changing it changes no model id.
"""
from __future__ import annotations

import argparse

import numpy as np

from .codecs import AecBench, PillowBench
from ..card import Rung
from ..model.vqvae import parse_ladder
from .run import bd_percent, load_images, measure, summarize


class LadderBench(AecBench):
    """The codec at arbitrary rungs (stages, step, scale); quality i is ``pairs[i]``."""

    def __init__(self, codec, pairs):
        super().__init__(codec)
        self.pairs = list(pairs)
        self.qualities = tuple(range(len(self.pairs)))

    def encode(self, rgb, quality):
        return self.codec.encode_at(rgb, *self.pairs[quality])


def _curve(points: dict, ladder) -> dict:
    rows = np.array([points[pair] for pair in ladder])
    return {"results": {"bpp": list(rows[:, 0]), "psnr-rgb": list(rows[:, 1]), "ms-ssim-rgb": list(rows[:, 2])}}


def main(argv=None):
    from ..codec import Codec
    from ..train.data import validation_files
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stages", default="1,2,3,4,5,6,7,8,9,10,11")
    p.add_argument("--steps", default="0,64,48,40,32,28,24,20,16,12", help="0 = no detail layer")
    p.add_argument("--ladder", action="append", default=[],
                   help="stages:step[:scale],... (repeatable)")
    p.add_argument("--every", type=int, default=2, help="every n-th validation photo")
    p.add_argument("--weights", default=None, help="a weights folder (default: the shipped model)")
    a = p.parse_args(argv)
    files = validation_files()[::a.every]
    images = load_images(files)
    codec = Codec(a.weights, device="cpu")
    candidates = [codec.ladder] + [tuple(parse_ladder(text)) for text in a.ladder]
    plain = tuple(Rung(s, 0.0) for s in range(1, codec.weights.config.stages + 1))
    pairs = sorted({Rung(int(s), float(t)) for s in a.stages.split(",") for t in a.steps.split(",")}
                   | {Rung(*rung) for ladder in candidates for rung in ladder} | set(plain))
    bench = LadderBench(codec, pairs)
    r = summarize(bench, measure(bench, images))["results"]
    points = {pairs[q]: (b, ps, ms) for q, b, ps, ms in zip(r["quality"], r["bpp"], r["psnr-rgb"], r["ms-ssim-rgb"])}
    print(f"{len(images)} validation photos")
    print("| stages | step | scale | bpp | PSNR | MS-SSIM |\n|---|---|---|---|---|---|")
    for (stages, step, scale), (b, ps, ms) in sorted(points.items()):
        print(f"| {stages} | {step:g} | {scale:g} | {b:.3f} | {ps:.2f} | {ms:.4f} |")
    jpeg = PillowBench("JPEG")
    anchor = summarize(jpeg, measure(jpeg, images))
    print("\n| ladder | vs JPEG (PSNR / MS-SSIM) | vs the plain ladder | bpp range |\n|---|---|---|---|")
    for name, ladder in [("plain (stages only)", plain), ("model card", candidates[0])] + \
            [(text, ladder) for text, ladder in zip(a.ladder, candidates[1:])]:
        curve = _curve(points, ladder)
        bpp = curve["results"]["bpp"]
        print(f"| {name} | {bd_percent(anchor, curve)} | {bd_percent(_curve(points, plain), curve)} "
              f"| {min(bpp):.3f}-{max(bpp):.3f} |")


if __name__ == "__main__":
    main()
