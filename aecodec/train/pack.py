"""Pack the training photos small enough to travel to a remote GPU machine.

Each photo is downscaled (which also hides the JPEG blocking of the BSDS500 sources)
and stored as a high-quality 4:4:4 JPEG under the same relative name, so the sorted
file order, and with it the train/validation split, is unchanged.

    python -m aecodec.train.pack ../shared/data/train .data/train --scale 0.7
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from .data import IMAGE_SUFFIXES, load_rgb


def pack(src: Path, dst: Path, scale: float, quality: int) -> int:
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    total = 0
    for f in tqdm(files, desc="packing"):
        out = dst / f.relative_to(src).with_suffix(".jpg")
        out.parent.mkdir(parents=True, exist_ok=True)
        im = load_rgb(f)
        im = im.resize((max(16, round(im.width * scale)), max(16, round(im.height * scale))),
                       Image.Resampling.LANCZOS)
        im.save(out, "JPEG", quality=quality, subsampling=0)
        total += out.stat().st_size
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--scale", type=float, default=0.7)
    ap.add_argument("--quality", type=int, default=92)
    a = ap.parse_args()
    print(f"{pack(a.src, a.dst, a.scale, a.quality) / 1e6:.1f} MB written to {a.dst}")


if __name__ == "__main__":
    main()
