"""Fitting the zero tables that version 11 files code their stages with (entropy/context.py).

The tables cover the first ``ZERO_STAGES`` stages, where most indices are code 0 and
groups behave alike (a table serves four of them); later stages keep the 18-context
rows, which are fitted per group (TRAINING_LOG Part 28). They count, on the training
split (never the held-out photos), how often each zero context holds code 0 in the
indices the codec's own search finds, for the searches the codec makes: at each coded
size of the card's ladder, a search of each stage count its rungs there code (one
more where the card's ``deeper_base`` rule adds one). The search places every stage
for the last, so a stage's indices depend on how many stages follow it.
Counting is split into parts that run side by side:

    python -m aecodec.train.zero_tables count OUT_0.npz --part 0 --parts 2
    python -m aecodec.train.zero_tables count OUT_1.npz --part 1 --parts 2
    python -m aecodec.train.zero_tables install weights OUT_0.npz OUT_1.npz

``install`` writes the tables beside the card and names them in it (the encoder then
writes version 11); files that name them keep decoding only with them, so a refit is
a new file with a new id.
"""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import torch
from tqdm import tqdm

from ..card import Rung
from ..entropy import count_zeros, quantize_zero_counts
from ..entropy.context import ZERO_CONTEXTS, ZERO_GROUP_SET
from ..weights import save_zero_tables
from .config import TrainConfig
from .data import list_training_images, load_rgb, split


ZERO_STAGES = 3


def searches(ladder: tuple[Rung, ...], stages: int, deeper_base: tuple = ()) -> list[tuple[float, int]]:
    """(scale, stages searched) of each search to count: every stage count the ladder's
    rungs code at each of their sizes, plus one for a rung whose step the card's
    ``deeper_base`` rule may put over one stage more."""
    counts: dict[float, set[int]] = {}
    for rung in ladder:
        counts.setdefault(rung.scale, set()).add(rung.stages)
        if deeper_base and 0 < rung.step <= deeper_base[0] and rung.stages < stages:
            counts[rung.scale].add(rung.stages + 1)
    return [(scale, n) for scale in sorted(counts) for n in sorted(counts[scale])]


def count(codec, files: list[Path]) -> np.ndarray:
    """Counts [ZERO_STAGES, G / set, Z, 2] of (non-zero, zero) over ``files`` for ``searches``."""
    config = codec.weights.config
    plan = searches(codec.ladder, config.stages, config.deeper_base)
    depth = min(ZERO_STAGES, config.stages)
    counts = np.zeros((depth, -(-config.groups // ZERO_GROUP_SET), ZERO_CONTEXTS, 2), dtype=np.int64)
    for f in tqdm(files, desc="counting zeros", leave=False):
        rgb = np.asarray(load_rgb(f))
        for scale, stages in plan:
            count_zeros(counts, codec.indices([rgb], stages, 1, scale)[0].astype(np.int64))
    return counts


@click.group()
def main():
    """Fit the zero tables of format version 11 on the training split."""


@main.command("count")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--weights", "weights_dir", default=None, help="weights folder (default: the shipped one)")
@click.option("--part", default=0, show_default=True, help="this process's share of the photos")
@click.option("--parts", default=1, show_default=True, help="how many processes share them")
@click.option("--threads", default=1, show_default=True)
def count_command(out: Path, weights_dir, part: int, parts: int, threads: int):
    """Count zeros by zero context on every PARTS-th training photo from PART."""
    from ..codec import Codec
    if not 0 <= part < parts:
        raise click.BadParameter(f"part must be in 0..{parts - 1}", param_hint="--part")
    torch.set_num_threads(threads)
    codec = Codec(weights_dir, device="cpu")
    train, _ = split(list_training_images(TrainConfig().data_dirs), TrainConfig().val_every_nth)
    files = train[part::parts]
    np.savez_compressed(out, counts=count(codec, files), photos=len(files))
    click.echo(f"counted {len(files)} photos -> {out}")


@main.command("install")
@click.argument("weights_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("counts", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def install_command(weights_dir: Path, counts):
    """Sum COUNTS, quantize them and name the tables in WEIGHTS_DIR's card."""
    loaded = [np.load(c) for c in counts]
    total = sum(z["counts"] for z in loaded)
    photos = int(sum(int(z["photos"]) for z in loaded))
    card = save_zero_tables(weights_dir, quantize_zero_counts(total), {
        "fitted_on": photos, "data": [str(d) for d in TrainConfig().data_dirs],
        "indices_counted_per_stage": total.sum((1, 2, 3)).tolist()})
    click.echo(f"zero tables {card['zero_tables']['file']} from {photos} photos")


if __name__ == "__main__":
    main()
