"""The training loop: resumable, logs validation numbers on held-out training photos.

Loss: lambda(q) * 255^2 * MSE + bpp, with q (the number of RVQ stages) drawn per
batch (quantizer dropout), so every prefix of stages decodes well.

Runs on the CPU or a GPU (bfloat16 autocast for the transforms; the quantizer stays
in float32), and data-parallel on several GPUs under ``torchrun``: every rank draws
the same q per step, gradients are averaged by DDP and codebook statistics by an
all-reduce inside the quantizer. Only rank 0 logs, validates and checkpoints.
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from ..model.vqvae import VQVAE
from .config import TrainConfig
from .data import CropSampler, CropStream, list_training_images, split, validation_crops


RESUME_NAME = "resume.pt"
# parameters added to the models after runs had started: a checkpoint without them
# resumes with their neutral defaults
NEWER_PARAMETERS = (".gains", ".phase_bias")


def write_resume(run_dir: Path) -> Path:
    """The run's checkpoint without optimizer state: small enough to commit, and what a
    fresh machine resumes from (Adam restarts with a warm-up)."""
    run_dir = Path(run_dir)
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False, map_location="cpu")
    state.pop("optimizer", None)
    atomic_save(state, run_dir / RESUME_NAME)
    return run_dir / RESUME_NAME


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bf16 in hardware (AMX or AVX-512 BF16), from its flags."""
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def lowpass_error(error: torch.Tensor, factors=(2, 4, 8, 16)) -> torch.Tensor:
    """Sum of the mean squared errors of the box-downsampled error images."""
    return sum(F.avg_pool2d(error, k).pow(2).mean() for k in factors)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.clamp(0, 1) * 255).round() - b * 255).pow(2).mean((1, 2, 3))
    return float((10 * torch.log10(255.0 ** 2 / mse.clamp_min(1e-10))).mean())


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def setup_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device); initialises torch.distributed under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


class Trainer:
    def __init__(self, config: TrainConfig, run_dir: Path, init_state: dict | None = None,
                 device: torch.device | None = None):
        self.config = config
        self.rank, self.world, auto_device = setup_distributed()
        self.device = device or auto_device
        # bfloat16 autocast where it is fast: on a GPU, and on a CPU with native bf16
        # (oneDNN with AMX: a v2 step 2.5x cheaper than fp32). An AVX2-only CPU emulates
        # bf16 and is 6-9x slower with it (docs/TRAINING_LOG.md, Parts 6 and 7;
        # ``python -m aecodec.train.steptime`` measures a machine). The quantizer always
        # runs in float32.
        self.amp = config.amp and (self.device.type == "cuda" or cpu_has_native_bf16())
        if self.rank == 0:
            print(f"training on {self.device} in {'bf16 autocast' if self.amp else 'fp32'}", flush=True)
        self.run_dir = Path(run_dir)
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        self.model = VQVAE(config.model).to(self.device, memory_format=torch.channels_last)
        self.net = self.model
        if self.world > 1:
            self.net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.step = 0
        self.codebooks_ready = False
        self.weights_ready = False
        self.warmup_end = 0              # the LR ramps up until this step (fresh Adam moments)
        self.elapsed = 0.0               # training seconds so far (for time-budgeted runs)
        self.validated_at = None         # the step of the last validation logged
        self.level_weights = torch.linspace(1.0, 3.0, config.model.stages + 1)
        files = list_training_images(config.data_dirs)
        train_files, self.val_files = split(files, config.val_every_nth)
        self.sampler = CropSampler(train_files, config.crop, config.seed + 7919 * self.rank)
        self.val = validation_crops(self.val_files, multiple=self.model.stride).to(self.device)
        self._stream = None
        ckpt = self.run_dir / "checkpoint.pt"
        resume = self.run_dir / RESUME_NAME          # committed: a fresh machine continues from it
        if ckpt.exists():
            self._resume(torch.load(ckpt, weights_only=False, map_location=self.device))
        elif resume.exists():
            self._resume(torch.load(resume, weights_only=False, map_location=self.device))
        elif init_state is not None:
            self._start_from_weights(init_state)

    def _start_from_weights(self, state: dict) -> None:
        """Continue from exported weights, possibly with more stages. Exported weights
        carry no EMA statistics, so rebuild them from the codebooks (otherwise the first
        update would zero the codebooks); new stages start from k-means on residuals."""
        old_stages = self.model.load_with_fewer_stages(state)
        q = self.model.quantizer
        with torch.no_grad():
            q.ema_count.fill_(100.0 / q.codes)
            q.ema_sum.copy_(q.codebooks * q.ema_count[..., None])
            if old_stages < q.stages:
                self.model.eval()
                q.init_codebooks(self.model.encoder(self._init_crops()), start=old_stages)
                self.model.train()
        self._sync_from_rank0()
        self.codebooks_ready = True
        self.warmup_end = self.config.warmup_steps

    def _resume(self, state: dict) -> None:
        missing, unexpected = self.model.load_state_dict(state["model"], strict=False)
        if unexpected or any(not k.endswith(NEWER_PARAMETERS + (".distortion_weight",)) for k in missing):
            raise ValueError(f"checkpoint does not fit the model: {missing} {unexpected}")
        added = [k for k in missing if k.endswith(NEWER_PARAMETERS)]
        if added:
            # an older checkpoint without parameters added since (level gains start at 1,
            # phase biases at 0, so the model computes what it did): Adam starts afresh
            print(f"new parameters start at their defaults: {added}", flush=True)
        if "optimizer" in state and not added:
            self.opt.load_state_dict(state["optimizer"])
        else:   # model-only checkpoints (carried from a GPU) and new parameters restart Adam
            self.warmup_end = state["step"] + self.config.warmup_steps
        self.step = state["step"]
        self.elapsed = state.get("elapsed", 0.0)
        self.codebooks_ready = state["codebooks_ready"]
        self.sampler.rng = np.random.default_rng([state["seed_offset"], self.rank, self.step])
        torch.manual_seed(state["seed_offset"] + self.step)
        print(f"resumed from step {self.step}", flush=True)

    def checkpoint(self) -> None:
        if self.rank != 0:
            return
        atomic_save({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                     "step": self.step, "elapsed": self.elapsed, "codebooks_ready": self.codebooks_ready,
                     "seed_offset": self.config.seed, "config": self.config.to_dict()},
                    self.run_dir / "checkpoint.pt")

    def lr_at(self, step: int) -> float:
        c = self.config
        if step < self.warmup_end:
            return c.lr * (1 - (self.warmup_end - step - 1) / c.warmup_steps)
        decay_share = min(1.0, c.decay_steps / c.steps)
        progress = self.elapsed / (c.minutes * 60) if c.minutes > 0 else step / c.steps
        if progress < 1 - decay_share:
            return c.lr
        t = min(1.0, (progress - (1 - decay_share)) / decay_share)
        return c.lr * (c.lr_final_fraction + (1 - c.lr_final_fraction) * 0.5 * (1 + math.cos(math.pi * t)))

    def _log(self, record: dict) -> None:
        if self.rank != 0:
            return
        print(json.dumps(record), flush=True)
        with open(self.run_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    @torch.no_grad()
    def _init_codebooks(self) -> None:
        self.model.eval()
        self.model.init_from_data(self._init_crops())
        self.model.train()
        self.codebooks_ready = True
        self._sync_from_rank0()

    def _init_crops(self) -> torch.Tensor:
        """256 crops for data-dependent initialisation (PCA, k-means)."""
        return torch.cat([self.sampler.batch(32) for _ in range(8)]).to(self.device)

    @torch.no_grad()
    def _sync_from_rank0(self) -> None:
        """Data-dependent initialisation sees each rank's own crops: make rank 0's the
        one every rank starts from (DDP only broadcasts parameters when it is built)."""
        if self.world > 1:
            for t in self.model.state_dict().values():
                dist.broadcast(t, 0)

    @torch.no_grad()
    def validate(self) -> dict:
        self.model.eval()
        x = self.val
        n_pix = x.shape[2] * x.shape[3]
        rec = {"step": self.step, "kind": "val"}
        # The transform's own ceiling: when the quantized levels stall, this says whether
        # the transform or the quantizer holds them back (training log, Part 8).
        x_unq = torch.cat([self.model(x[i:i + 8], None)["x_hat"] for i in range(0, len(x), 8)])
        rec["unquantized"] = {"psnr": round(psnr(x_unq, x), 3)}
        for q in sorted({1, (self.config.model.stages + 1) // 2, self.config.model.stages}):
            outs = [self.model(x[i:i + 8], q) for i in range(0, len(x), 8)]
            x_hat = torch.cat([o["x_hat"] for o in outs])
            idx = [torch.cat([o["indices"][s] for o in outs]) for s in range(q)]
            bits = self.model.quantizer.bits_table()
            hard = 0.0
            for s in range(q):                         # ideal code length under the prior
                ctx = (idx[s - 1] != 0).long() if s else torch.zeros_like(idx[s])
                g = torch.arange(idx[s].shape[1], device=self.device)[None].expand_as(idx[s])
                hard += float(bits[s][g, ctx, idx[s]].sum())
            rec[f"q{q}"] = {"psnr": round(psnr(x_hat, x), 3),
                            "bpp": round(hard / (len(x) * n_pix), 4)}
        self.model.train()
        self._log(rec)
        self.validated_at = self.step          # only once the record is in the log
        return rec

    def _next_batch(self) -> torch.Tensor:
        c = self.config
        if c.workers == 0:
            return self.sampler.batch(c.batch_size).to(self.device)
        if self._stream is None:
            stream = CropStream(self.sampler, c.batch_size, (c.seed, self.rank, self.step))
            self._stream = iter(torch.utils.data.DataLoader(
                stream, batch_size=None, num_workers=c.workers,
                pin_memory=self.device.type == "cuda", prefetch_factor=4))
        return next(self._stream).to(self.device, non_blocking=True)

    def train(self, max_steps: int | None = None, max_seconds: float | None = None) -> None:
        c = self.config
        end = c.steps if max_steps is None else min(c.steps, self.step + max_steps)
        t0 = time.time()
        self.model.train()
        window = []
        elapsed0 = self.elapsed
        while self.step < end:
            self.elapsed = elapsed0 + time.time() - t0
            if self.world > 1:   # rank 0's clock for all: same LR and same last step everywhere
                clock = torch.tensor([self.elapsed], dtype=torch.float64, device=self.device)
                dist.broadcast(clock, 0)
                self.elapsed = float(clock)
            if max_seconds is not None and self.elapsed - elapsed0 > max_seconds:
                break
            if c.minutes > 0 and self.elapsed >= c.minutes * 60:
                break
            x = self._next_batch().contiguous(memory_format=torch.channels_last)
            pretraining = self.step < c.pretrain_steps
            if not self.codebooks_ready and not pretraining:
                self._init_codebooks()
            if not pretraining and (self.step % 200 == 0 or not self.weights_ready):
                self.model.eval()
                self.model.estimate_distortion_weights(x[:1])
                self.weights_ready = True
                self.model.train()
            # Quantizer dropout over 1..S stages, plus an unquantized level (q = None)
            # that keeps the transforms invertible for the high-rate end; deeper levels
            # are drawn more often (the shared encoder otherwise favours low rates).
            # (seeded by the step, so every data-parallel rank draws the same level)
            g = torch.Generator().manual_seed(c.seed * 1_000_003 + self.step)
            q = int(torch.multinomial(self.level_weights, 1, generator=g)) + 1
            if pretraining or q > c.model.stages:
                q, lam = None, c.lambda_high
            else:
                lam = c.lambda_for(q)
            for group in self.opt.param_groups:
                group["lr"] = self.lr_at(self.step)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                out = self.net(x, q)
            error = out["x_hat"].float() - x
            mse = error.pow(2).mean()
            bpp = out["bits"].mean() / (x.shape[2] * x.shape[3])
            distortion = mse + c.lowpass_weight * lowpass_error(error) if c.lowpass_weight else mse
            loss = lam * 255 ** 2 * distortion + bpp
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
            self.step += 1
            window.append((loss.item(), mse.item(), bpp.item()))
            if self.step % 50 == 0:
                l, m, b = np.mean(window, axis=0)
                window.clear()
                rec = {"step": self.step, "kind": "train", "loss": round(l, 4),
                       "psnr": round(float(10 * np.log10(1 / max(m, 1e-10))), 3), "bpp": round(b, 4),
                       "sec": round(time.time() - t0, 1)}
                self._log(rec)
            if self.step % c.checkpoint_every == 0:
                self.checkpoint()
            if self.step % c.validate_every == 0 and self.codebooks_ready and self.rank == 0:
                self.validate()
        self.checkpoint()
