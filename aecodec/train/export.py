"""Export a training checkpoint to a weights folder: half-precision safetensors,
integer entropy tables fitted on the training split, and a model card."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..card import newest_format_version
from ..entropy import NUM_CONTEXTS, count_indices, quantize_counts
from ..model.vqvae import VQVAE, parse_ladder
from ..weights import save_weights
from .config import TrainConfig
from ..model.tiling import DEFAULT_TILE
from .data import list_training_images, load_rgb, split
from .loop import RESUME_NAME


def _round_trip_half(model: VQVAE) -> VQVAE:
    """Use exactly the weights that will ship (fp16) when fitting the tables."""
    sd = {k: (v.half().float() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    model.load_state_dict(sd)
    return model


@torch.no_grad()
def fit_tables(model: VQVAE, files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    cfg = model.config
    counts = np.zeros((cfg.stages, cfg.groups, NUM_CONTEXTS, cfg.codes), dtype=np.int64)
    for f in tqdm(files, desc="fitting entropy tables", leave=False):
        a = np.asarray(load_rgb(f))
        x = torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() / 255
        # padded and tiled exactly as the codec does, so the tables fit what it codes
        count_indices(counts, model.compress(x, cfg.stages, DEFAULT_TILE)[:, 0].numpy())
    return quantize_counts(counts), counts


PHASE_FIT_IMAGES = 48


@torch.no_grad()
def fit_phase_bias(model: VQVAE, files: list[Path]) -> np.ndarray | None:
    """Set each level's phase bias (model/transforms.py) so that the mean error per
    position in the latent cell is zero on whole photos through the codec's own search.
    Training on small rescaled crops learns a different bias (training log, Part 10).
    Returns the change per level (rms, in pixel levels); None for models without one."""
    phase = getattr(model.decoder, "phase", None)
    if phase is None:
        return None
    p, levels = phase.period, model.config.stages + 1
    total = torch.zeros(levels, 3, p, p, dtype=torch.float64)
    cells = 0
    for f in tqdm(files, desc="fitting the phase bias", leave=False):
        a = np.asarray(load_rgb(f))
        h, w = a.shape[0] // p * p, a.shape[1] // p * p             # whole cells only
        x = torch.from_numpy(a[:h, :w].copy()).permute(2, 0, 1)[None].float() / 255
        y = model.encoder(x)
        for level in range(levels):
            if level == model.config.stages:
                latent = y
            else:
                latent = model.quantizer.dequantize(model.quantizer.quantize(y, level + 1).long())
            error = x - model.decoder(latent, level)
            total[level] += error.double().view(3, h // p, p, w // p, p).sum((1, 3))
        cells += (h // p) * (w // p)
    change = (total / cells).float()
    phase.phase_bias.add_(change)
    return (change * 255).pow(2).mean((1, 2, 3)).sqrt().numpy()


def validation_log(run_dir: Path) -> list[dict]:
    """The validation records of the run (held-out training photos, ideal code lengths)."""
    log = Path(run_dir) / "log.jsonl"
    if not log.exists():
        return []
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("kind") == "val"]


def export(run_dir: Path, out_dir: Path, max_images: int | None = None,
           data_dirs: list[str] | None = None, **search) -> dict:
    """``search`` may set the encoder-side search_mix / search_scale / search_beam, the
    quality ``ladder`` and the ``deeper_base`` rule of the model config.
    ``data_dirs`` replaces the run's data folders for fitting the tables (a run trained
    on packed, downscaled copies should fit its tables on the original photos)."""
    run_dir = Path(run_dir)
    checkpoint = run_dir / "checkpoint.pt"
    if not checkpoint.exists():          # a fresh clone has only the committed snapshot
        checkpoint = run_dir / RESUME_NAME
    state = torch.load(checkpoint, weights_only=False, map_location="cpu")
    config = TrainConfig.from_dict(state["config"])
    config = replace(config, model=replace(config.model, **{k: v for k, v in search.items() if v is not None}))
    model = VQVAE(config.model)
    model.load_state_dict(state["model"])
    model = _round_trip_half(model.eval())
    fit_dirs = data_dirs or config.data_dirs
    train_files, val_files = split(list_training_images(fit_dirs), config.val_every_nth)
    fit_files = train_files[:max_images] if max_images else train_files
    freqs, counts = fit_tables(model, fit_files)
    phase_change = fit_phase_bias(model, fit_files[:PHASE_FIT_IMAGES])   # save_weights halves it
    used = counts.sum(2) > 0
    card = {
        "name": "aecodec-default",
        "format_version": newest_format_version({"config": config.model.to_dict()}),   # no filters yet
        "training": {
            "data": [str(d) for d in config.data_dirs],
            "train_images": len(train_files),
            "validation_images": [f.name for f in val_files],
            "steps": state["step"],
            "config": config.to_dict(),
            "entropy_tables_fitted_on": len(fit_files),
            "entropy_tables_data": [str(d) for d in fit_dirs],
        },
        "codebook_codes_used_per_stage": used.sum((1, 2)).tolist(),
        **({} if phase_change is None else {
            "phase_bias_refit": {"images": len(fit_files[:PHASE_FIT_IMAGES]),
                                 "change_rms_per_level": [round(float(v), 3) for v in phase_change]}}),
    }
    card["training"]["validation_log"] = validation_log(run_dir)
    lineage = run_dir / "lineage.json"     # how the run started (hand-written, optional)
    if lineage.exists():
        card["training"]["lineage"] = json.loads(lineage.read_text())
    return save_weights(out_dir, model, freqs, card)


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(description="Export a checkpoint to a weights folder.")
    p.add_argument("run_dir")
    p.add_argument("out_dir")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--search-mix", type=float, default=None)
    p.add_argument("--search-scale", type=float, default=None)
    p.add_argument("--search-beam", type=int, default=None)
    p.add_argument("--ladder", default=None,
                   help="quality ladder stages:step,... (step 0: no detail layer; default: quality = stages)")
    p.add_argument("--deeper-base", default=None, metavar="STEP:BPP",
                   help="detail steps up to STEP go over one stage more when the rung's stages take under BPP")
    p.add_argument("--data-dirs", nargs="+", default=None,
                   help="photos to fit the entropy tables on (default: the run's data_dirs)")
    a = p.parse_args(argv)
    card = export(Path(a.run_dir), Path(a.out_dir), a.max_images, a.data_dirs,
                  search_mix=a.search_mix, search_scale=a.search_scale, search_beam=a.search_beam,
                  ladder=None if a.ladder is None else parse_ladder(a.ladder),
                  deeper_base=None if a.deeper_base is None else [float(v) for v in a.deeper_base.split(":")])
    print(json.dumps({k: card[k] for k in ("file", "sha256", "model_id")}))


if __name__ == "__main__":
    main()
