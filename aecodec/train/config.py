"""Training run configuration: one JSON file per run (see ``configs/``)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..model.vqvae import ModelConfig


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data_dirs: tuple[str, ...] = ("../shared/data/train/bsds500", "../shared/data/train/urban100")
    val_every_nth: int = 25          # every 25th file (sorted) is held out for validation
    steps: int = 20000
    batch_size: int = 8
    crop: int = 128
    lr: float = 2e-4
    lr_final_fraction: float = 0.1   # lr decays to lr * this over the last decay_steps
    decay_steps: int = 2000
    lambda_low: float = 0.0018       # lambda * 255^2 * MSE + bpp, for 1 stage
    lambda_high: float = 0.04        # ... for all stages
    # Weight of the squared error of the 2x, 4x, 8x and 16x box-downsampled images,
    # added to the pixel MSE: plain MSE is blind to how error is spread over
    # frequencies, MS-SSIM and the eye are not (low-frequency error costs most).
    lowpass_weight: float = 0.0
    checkpoint_every: int = 200
    warmup_steps: int = 500          # LR ramp when starting from exported weights
    workers: int = 0                 # crop-sampling worker processes (0: in the loop)
    amp: bool = True                 # bfloat16 autocast for the transforms where it is fast (loop.py)
    # A wall-time budget instead of a step count (for lent GPU time): with minutes > 0
    # training stops after that long and the LR schedule follows elapsed time, decaying
    # over the last decay_steps / steps of it.
    minutes: float = 0.0
    validate_every: int = 1000
    # Steps trained without quantization before the codebooks are initialised by
    # k-means on the latents: a deep transform starts from noise, not from PCA.
    pretrain_steps: int = 0
    seed: int = 0

    def lambda_for(self, n_stages: int) -> float:
        s = self.model.stages
        t = 0.0 if s == 1 else (n_stages - 1) / (s - 1)
        return self.lambda_low * (self.lambda_high / self.lambda_low) ** t

    def to_dict(self) -> dict:
        d = asdict(self)
        d["data_dirs"] = list(self.data_dirs)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training config keys: {sorted(unknown)}")
        if "model" in d:
            d["model"] = ModelConfig.from_dict(d["model"])
        if "data_dirs" in d:
            d["data_dirs"] = tuple(d["data_dirs"])
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))
