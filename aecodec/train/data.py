"""Training data: photos from ../shared/data/train, held in memory, random crops.

Augmentation: random downscaling (0.5 to 1.0, which also hides the JPEG blocking of
the BSDS500 sources), random crops and horizontal flips.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..imageio import list_images

def list_training_images(dirs) -> list[Path]:
    files = []
    for d in dirs:
        if not Path(d).is_dir():
            raise FileNotFoundError(f"training data folder not found: {d}")
        files += list_images(d, recursive=True)
    return files


def split(files: list[Path], every_nth: int) -> tuple[list[Path], list[Path]]:
    """Deterministic train/validation split: every n-th file is held out."""
    val = files[::every_nth]
    held = set(val)
    return [f for f in files if f not in held], val


def validation_files() -> list[Path]:
    """The photos the default training config holds out (never trained on)."""
    from .config import TrainConfig
    config = TrainConfig()
    return split(list_training_images(config.data_dirs), config.val_every_nth)[1]


def load_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


class CropSampler:
    def __init__(self, files: list[Path], crop: int, seed: int):
        self.images = [load_rgb(f) for f in files]
        self.crop = crop
        self.rng = np.random.default_rng(seed)
        areas = np.array([im.width * im.height for im in self.images], dtype=np.float64)
        self.weights = areas / areas.sum()

    def sample(self) -> np.ndarray:
        im = self.images[self.rng.choice(len(self.images), p=self.weights)]
        scale = self.rng.uniform(0.5, 1.0)
        size = min(int(round(self.crop / scale)), im.width, im.height)
        x0 = self.rng.integers(0, im.width - size + 1)
        y0 = self.rng.integers(0, im.height - size + 1)
        patch = im.resize((self.crop, self.crop), Image.Resampling.BICUBIC,
                          box=(x0, y0, x0 + size, y0 + size))
        a = np.asarray(patch)
        if self.rng.random() < 0.5:
            a = a[:, ::-1]
        return a

    def batch(self, n: int) -> torch.Tensor:
        a = np.stack([self.sample() for _ in range(n)])
        return torch.from_numpy(a.copy()).permute(0, 3, 1, 2).float().div_(255.0)


class CropStream(torch.utils.data.IterableDataset):
    """Endless batches from a CropSampler, for DataLoader worker processes.

    Each worker (and each data-parallel rank) draws from its own random stream.
    """

    def __init__(self, sampler: CropSampler, batch_size: int, seed: tuple[int, ...]):
        self.sampler, self.batch_size, self.seed = sampler, batch_size, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        self.sampler.rng = np.random.default_rng([*self.seed, 0 if info is None else info.id])
        while True:
            yield self.sampler.batch(self.batch_size)


def validation_crops(files: list[Path], size: int = 256, multiple: int = 16) -> torch.Tensor:
    """Centre crops of the held-out photos, for a cheap and repeatable validation."""
    out = []
    for f in files:
        im = load_rgb(f)
        s = min(size, im.width, im.height) // multiple * multiple
        x0, y0 = (im.width - s) // 2, (im.height - s) // 2
        out.append(np.asarray(im.crop((x0, y0, x0 + s, y0 + s)).resize((size, size))))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float().div_(255.0)
