"""Files written on one device must decode on another: encode and decode on a GPU,
then decode the same files on the CPU and compare.

    python -m aecodec.bench.crossdevice write DIR IMAGE... --device cuda   (on the GPU)
    python -m aecodec.bench.crossdevice check DIR                          (on the CPU)

``write`` leaves NAME-qQ.aec and NAME-qQ.ref.png (decoded where it was written) for
each quality Q of ``--qualities``: by default 1, coded at a reduced size and filtered
after scaling up (format version 8), 3, the same with a detail layer whose steps adapt
to the base image (version 10), and 7, at full size with such a layer (version 10).
``check`` decodes every .aec file here and reports how far its
pixels are from its .ref.png.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..codec import Codec


DEFAULT_QUALITIES = (1, 3, 7)


def write(out: Path, images: list[Path], device: str, qualities=DEFAULT_QUALITIES,
          weights: str | None = None) -> None:
    codec = Codec(weights, device=device)
    out.mkdir(parents=True, exist_ok=True)
    for src in images:
        for q in qualities:
            data = codec.encode(src, q)
            (out / f"{src.stem}-q{q}.aec").write_bytes(data)
            codec.decode(data).save(out / f"{src.stem}-q{q}.ref.png")
            print(f"{src.name} at quality {q}: {len(data)} bytes written on {codec.device}")


def check(folder: Path, weights: str | None = None) -> list[dict]:
    codec = Codec(weights, device="cpu")
    rows = []
    for f in sorted(folder.glob("*.aec")):
        here = np.asarray(codec.decode(f.read_bytes()), dtype=np.int16)
        ref = np.asarray(Image.open(f.with_suffix(".ref.png")), dtype=np.int16)
        diff = np.abs(here - ref)
        rows.append({"file": f.name, "max_abs_diff": int(diff.max()),
                     "share_of_values_differing": float((diff > 0).mean())})
        print(json.dumps(rows[-1]))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("out", type=Path)
    w.add_argument("images", type=Path, nargs="+")
    w.add_argument("--device", default="cuda")
    w.add_argument("--qualities", type=lambda text: tuple(int(q) for q in text.split(",")),
                   default=DEFAULT_QUALITIES, help="comma-separated (default: 3,7)")
    c = sub.add_parser("check")
    c.add_argument("folder", type=Path)
    for p in (w, c):
        p.add_argument("--weights", default=None, help="weights folder (default: the shipped model)")
    a = ap.parse_args(argv)
    if a.cmd == "write":
        write(a.out, a.images, a.device, a.qualities, a.weights)
    else:
        check(a.folder, a.weights)


if __name__ == "__main__":
    main()
