"""Decoder refit: train a (possibly deeper) decoder on the encoder's own indices.

Why: the encoder, codebooks and entropy tables define the bitstream; the decoder only
turns indices into pixels. With those frozen, a better decoder improves every file,
old ones included, and needs no GPU: the training set is a fixed set of crops with
the indices the shipped encoder writes for each quality (the same beam search), so
the decoder learns exactly what it will see. The loss is in the log domain (dB), so
low and high qualities weigh alike, with an optional MS-SSIM term.

    python -m aecodec.train.refit prepare --out runs/refit
    python -m aecodec.train.refit train --out runs/refit --minutes 60 --postfilter-blocks 4
    python -m aecodec.train.refit export --out runs/refit --to weights
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from pytorch_msssim import ms_ssim

from ..model.vqvae import VQVAE
from ..weights import load_weights, save_weights
from .config import TrainConfig
from .data import CropSampler, list_images, split, validation_crops

SET_NAME = "set.pt"
CHECKPOINT = "refit.pt"
WARMUP_STEPS = 300
NEW_LR_SCALE = 4.0


def _is_new(name: str, old_blocks: int) -> bool:
    """Parameters of postfilter blocks beyond the ``old_blocks`` the weights had."""
    parts = name.split(".")
    return name.startswith("postfilter.blocks.") and parts[2].isdigit() and int(parts[2]) >= old_blocks


def ladder_stage_counts(config) -> list[int]:
    return sorted({s for s, _ in config.quality_ladder()})


@torch.no_grad()
def _indices(model: VQVAE, x: torch.Tensor, counts: list[int], batch: int = 16) -> dict:
    out = {n: [] for n in counts}
    for i in range(0, len(x), batch):
        y = model.encoder(x[i:i + batch])
        for n in counts:
            out[n].append(model.quantizer.quantize(y, n).to(torch.uint8))
    return {n: torch.cat(v, 1) for n, v in out.items()}          # [n, N, G, h, w]


def prepare(out: Path, weights: str | None, crops: int, crop: int, seed: int) -> None:
    """Training crops (random scale, position, flip) and validation centre crops, each
    with the indices of every stage count the quality ladder uses."""
    torch.set_num_threads(2)
    loaded = load_weights(weights)
    model = loaded.build_model()
    counts = ladder_stage_counts(loaded.config)
    train_files, val_files = split(list_images(TrainConfig().data_dirs), TrainConfig().val_every_nth)
    sampler = CropSampler(train_files, crop, seed)
    x = sampler.batch(crops)
    xv = validation_crops(val_files, crop)
    t = time.time()
    data = {"counts": counts, "model_id": loaded.model_id.hex(),
            "train": (x.mul(255).round().to(torch.uint8), _indices(model, x, counts)),
            "val": (xv.mul(255).round().to(torch.uint8), _indices(model, xv, counts))}
    out.mkdir(parents=True, exist_ok=True)
    torch.save(data, out / SET_NAME)
    print(f"{crops} training and {len(xv)} validation crops, stages {counts}, "
          f"searched in {time.time() - t:.0f} s -> {out / SET_NAME}")


def _model(weights: str | None, postfilter_blocks: int | None):
    """The shipped model, its decoder grown to ``postfilter_blocks`` (new blocks start as
    the identity, so the refit starts exactly where the shipped decoder is)."""
    loaded = load_weights(weights)
    config = loaded.config
    if postfilter_blocks is not None:
        config = dataclasses.replace(config, postfilter_blocks=postfilter_blocks)
    model = VQVAE(config)
    own = model.state_dict()
    for key, value in loaded.state_dict.items():
        if key.endswith("postfilter.blocks.gains") and value.shape != own[key].shape:
            own[key][:, :value.shape[1]] = value
        else:
            own[key] = value
    model.load_state_dict(own)
    return loaded, model.eval()       # eval: the quantizer's search prior is the encoder's


def _loss(x_hat: torch.Tensor, x: torch.Tensor, msssim_weight: float) -> torch.Tensor:
    """Mean over images of ln MSE (+ weight * ln(1 - MS-SSIM)): proportional to dB."""
    mse = (x_hat - x).pow(2).mean((1, 2, 3)).clamp_min(1e-10)
    loss = mse.log().mean()
    if msssim_weight:
        ms = ms_ssim(x_hat.clamp(0, 1), x, data_range=1.0, size_average=False)
        loss = loss + msssim_weight * (1 - ms).clamp_min(1e-6).log().mean()
    return loss


@torch.no_grad()
def evaluate(model: VQVAE, data: dict) -> dict:
    x8, indices = data["val"]
    x = x8.float() / 255
    result = {}
    for n, idx in indices.items():
        x_hat = model.decoder(model.quantizer.dequantize(idx.long()), n - 1).clamp(0, 1)
        x_hat = (x_hat * 255).round() / 255
        mse = (x_hat - x).pow(2).mean((1, 2, 3))
        result[n] = {"psnr": round(float((-10 * mse.log10()).mean()), 3),
                     "ms_ssim": round(float(ms_ssim(x_hat, x, data_range=1.0)), 5)}
    return result


def train(out: Path, weights: str | None, minutes: float, postfilter_blocks: int | None,
          lr: float, batch: int, msssim_weight: float, level_weights: dict, seed: int,
          validate_every: int) -> None:
    torch.set_num_threads(2)
    data = torch.load(out / SET_NAME)
    loaded, model = _model(weights, postfilter_blocks)
    if data["model_id"] != loaded.model_id.hex():
        raise SystemExit(f"{out / SET_NAME} was searched by model {data['model_id']}, not {loaded.model_id.hex()}")
    # New blocks start at zero and have everything to learn; trained weights only adjust.
    grown = [p for k, p in model.decoder.named_parameters() if _is_new(k, loaded.config.postfilter_blocks)]
    kept = [p for k, p in model.decoder.named_parameters() if not _is_new(k, loaded.config.postfilter_blocks)]
    opt = torch.optim.Adam([{"params": kept, "scale": 1.0}, {"params": grown, "scale": NEW_LR_SCALE}], lr)
    step, elapsed, log = 0, 0.0, []
    ckpt = out / CHECKPOINT
    if ckpt.is_file():
        state = torch.load(ckpt)
        model.decoder.load_state_dict(state["decoder"])
        opt.load_state_dict(state["opt"])
        step, elapsed, log = state["step"], state["elapsed"], state["log"]
        print(f"resumed at step {step} ({elapsed / 60:.1f} min)")
    else:
        log.append({"step": 0, "val": evaluate(model, data)})
        print(json.dumps(log[-1]))
    x8, indices = data["train"]
    counts = data["counts"]
    p = np.array([level_weights.get(n, 1.0) for n in counts])
    rng = np.random.default_rng([seed, step])
    model.decoder.train()
    start = time.time() - elapsed
    budget = minutes * 60
    while True:
        elapsed = time.time() - start
        done = elapsed >= budget
        if step % validate_every == 0 and step or done:
            model.decoder.eval()
            log.append({"step": step, "minutes": round(elapsed / 60, 1), "val": evaluate(model, data)})
            model.decoder.train()
            print(json.dumps(log[-1]), flush=True)
            torch.save({"decoder": model.decoder.state_dict(), "opt": opt.state_dict(), "step": step,
                        "elapsed": elapsed, "log": log, "postfilter_blocks": model.config.postfilter_blocks,
                        "msssim_weight": msssim_weight, "lr": lr, "batch": batch}, ckpt)
        if done:
            break
        # warm-up (Adam's first steps are full-size whatever the gradient), then cosine
        # decay over the wall-time budget
        for g in opt.param_groups:
            g["lr"] = g["scale"] * lr * min(1.0, (step + 1) / WARMUP_STEPS) \
                * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / budget)))
        n = int(rng.choice(counts, p=p / p.sum()))
        pick = torch.from_numpy(rng.choice(len(x8), batch, replace=False))
        x = x8[pick].float() / 255
        y_hat = model.quantizer.dequantize(indices[n][:, pick].long())
        loss = _loss(model.decoder(y_hat, n - 1), x, msssim_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1


def export(out: Path, weights: str | None, to: Path) -> None:
    """Write the refitted model: same encoder, codebooks and entropy tables, so the
    files it writes hold the same indices; the card says whose stage-only files it
    decodes (``decodes_stage_files_of``)."""
    state = torch.load(out / CHECKPOINT)
    loaded, model = _model(weights, state["postfilter_blocks"])
    model.decoder.load_state_dict(state["decoder"])
    card = json.loads(json.dumps(loaded.card))
    for key in ("file", "sha256", "model_id", "config", "results"):
        card.pop(key, None)
    previous = loaded.model_id.hex()
    card["decodes_stage_files_of"] = sorted({previous, *loaded.card.get("decodes_stage_files_of", [])})
    card["decoder_refit"] = {
        "from_model": previous, "steps": state["step"], "minutes": round(state["elapsed"] / 60, 1),
        "postfilter_blocks": state["postfilter_blocks"], "msssim_weight": state["msssim_weight"],
        "lr": state["lr"], "batch": state["batch"],
        "crops": int(torch.load(out / SET_NAME)["train"][0].shape[0]),
        "validation_log": [state["log"][0], state["log"][-1]],
    }
    saved = save_weights(to, model.eval(), loaded.freqs, card)
    print(f"model {saved['model_id']} -> {to}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m aecodec.train.refit", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["prepare", "train", "export"])
    ap.add_argument("--out", type=Path, required=True, help="run folder (crops, checkpoint)")
    ap.add_argument("--weights", default=None, help="starting weights (default: the shipped ones)")
    ap.add_argument("--crops", type=int, default=1200)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--postfilter-blocks", type=int, default=None)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--msssim-weight", type=float, default=0.0)
    ap.add_argument("--level-weights", default="", help="stages:weight pairs, e.g. 7:1.5,8:2")
    ap.add_argument("--validate-every", type=int, default=500)
    ap.add_argument("--to", type=Path, default=None, help="export folder")
    a = ap.parse_args(argv)
    if a.action == "prepare":
        prepare(a.out, a.weights, a.crops, a.crop, a.seed)
    elif a.action == "train":
        weights = {int(k): float(v) for k, v in (p.split(":") for p in a.level_weights.split(",") if p)}
        train(a.out, a.weights, a.minutes, a.postfilter_blocks, a.lr, a.batch, a.msssim_weight,
              weights, a.seed, a.validate_every)
    else:
        if a.to is None:
            ap.error("export needs --to")
        export(a.out, a.weights, a.to)


if __name__ == "__main__":
    main()
