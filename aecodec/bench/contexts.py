"""How much richer entropy contexts would save on the shipped model's indices.

Indices come from the codec's own search at the top quality, on every 12th training
photo (to fit count tables) and on the held-out validation photos (to measure). Each
context model is fitted by counting, with the shipped 18-context tables as a back-off
where a context is rare, and scored as the ideal code length on the held-out photos,
in bits per index, per stage. The row "shipped" is the weights' own tables.

    python -m aecodec.bench.contexts --out benchmarks/results/contexts
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..entropy.context import NUM_CONTEXTS, context

BACKOFF = 16.0          # pseudo-counts of the 18-context table behind each richer context


def _activity(indices, s):
    """How many groups were non-zero at each position in the previous stage,
    bucketed: the local detail level, which is what a hyperprior would transmit."""
    if s == 0:
        return np.zeros(indices.shape[2:], dtype=np.int64), 1
    busy = (indices[s - 1] != 0).sum(0)
    return np.searchsorted(np.array([1, 4, 10, 24]), busy, side="right"), 5


def _activity_and_current(indices, s, g, codes):
    a, na = _activity(indices, s)
    done = (indices[s, :g] != 0).sum(0)
    return a * 4 + np.minimum(done * 4 // max(g, 1), 3), na * 4


def _previous_value(indices, s, g, codes):
    """The previous stage's index at the same position and group."""
    return (indices[s - 1, g], codes) if s else (np.zeros(indices.shape[2:], np.int64), 1)


def _upper_neighbour(indices, s, g, codes):
    """The index above in the same stage and group (coding row by row); ``codes``: none."""
    above = np.full(indices.shape[2:], codes, dtype=np.int64)
    above[1:] = indices[s, g, :-1]
    return above, codes + 1


# name -> refinement of the shipped context: (indices [S, G, h, w], s, g, codes) -> (plane, count)
REFINEMENTS = {
    "activity (previous stage, all groups)": lambda ind, s, g, codes: _activity(ind, s),
    "activity + current stage's earlier groups": _activity_and_current,
    "previous stage's index value": _previous_value,
    "index above (row-by-row coding)": _upper_neighbour,
}


def collect(codec, files, stages: int) -> list[np.ndarray]:
    return [codec.indices([f], stages)[0].astype(np.int64) for f in files]


def _base(indices, s, g):
    return context(indices[s - 1] if s else None, indices[s], g)


def shipped_bits(freqs: np.ndarray, held_out: list[np.ndarray]) -> np.ndarray:
    p = freqs / freqs.sum(-1, keepdims=True)
    bits = np.zeros(freqs.shape[0])
    for ind in held_out:
        for s in range(ind.shape[0]):
            for g in range(ind.shape[1]):
                bits[s] -= np.log2(p[s, g, _base(ind, s, g), ind[s, g]]).sum()
    return bits


def refined_bits(refine, fit: list[np.ndarray], held_out: list[np.ndarray], codes: int) -> np.ndarray:
    """Bits per stage on ``held_out`` of tables counted on ``fit``, per (stage, group,
    shipped context, refinement), backed off to the (stage, group, shipped context) table."""
    stages, groups = fit[0].shape[:2]
    bits = np.zeros(stages)
    for s in range(stages):
        for g in range(groups):
            base = np.zeros((NUM_CONTEXTS, codes))
            fine = None
            for ind in fit:
                c0 = _base(ind, s, g)
                r, n = (np.zeros_like(c0), 1) if refine is None else refine(ind, s, g, codes)
                base += np.bincount((c0 * codes + ind[s, g]).ravel(), minlength=NUM_CONTEXTS * codes
                                    ).reshape(NUM_CONTEXTS, codes)
                counts = np.bincount(((c0 * n + r) * codes + ind[s, g]).ravel(),
                                     minlength=NUM_CONTEXTS * n * codes).reshape(NUM_CONTEXTS, n, codes)
                fine = counts if fine is None else fine + counts
            p_base = (base + 0.5) / (base + 0.5).sum(1, keepdims=True)
            p = (fine + BACKOFF * p_base[:, None]) / (fine.sum(2, keepdims=True) + BACKOFF)
            for ind in held_out:
                c0 = _base(ind, s, g)
                r, _ = (np.zeros_like(c0), 1) if refine is None else refine(ind, s, g, codes)
                bits[s] -= np.log2(p[c0, r, ind[s, g]]).sum()
    return bits


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/contexts"))
    p.add_argument("--weights", default=None, help="weights folder (default: the shipped model)")
    a = p.parse_args(argv)
    from ..codec import Codec
    from ..train.config import TrainConfig
    from ..train.data import list_training_images, split
    codec = Codec(a.weights, device="cpu")
    cfg = codec.weights.config
    data = TrainConfig()
    train, validation = split(list_training_images(data.data_dirs), data.val_every_nth)
    fit = collect(codec, train[::12], cfg.stages)
    held_out = collect(codec, validation, cfg.stages)
    per_stage = sum(ind[0].size for ind in held_out)      # indices per stage (positions x groups)
    rows = {"shipped tables (18 contexts)": shipped_bits(codec.freqs.astype(np.float64), held_out),
            "18 contexts, counted on the fit photos": refined_bits(None, fit, held_out, cfg.codes)}
    for name, refine in REFINEMENTS.items():
        rows[f"18 contexts x {name}"] = refined_bits(refine, fit, held_out, cfg.codes)
    table = {name: (bits / per_stage).round(4).tolist() for name, bits in rows.items()}
    ref = sum(table["18 contexts, counted on the fit photos"])
    lines = ["| context model | " + " | ".join(f"stage {s + 1}" for s in range(cfg.stages))
             + " | sum | vs counted 18 |", "|---" * (cfg.stages + 3) + "|"]
    for name, per in table.items():
        lines.append(f"| {name} | " + " | ".join(f"{b:.3f}" for b in per)
                     + f" | {sum(per):.3f} | {100 * (sum(per) / ref - 1):+.1f}% |")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "contexts.json").write_text(json.dumps(
        {"model_id": codec.model_id, "fit_images": len(fit), "held_out_images": len(held_out),
         "bits_per_index": table}, indent=2) + "\n")
    (a.out / "contexts.md").write_text(
        f"Bits per index on {len(held_out)} held-out photos, tables counted on {len(fit)} training "
        f"photos, model {codec.model_id} (`python -m aecodec.bench.contexts`).\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
