"""Batch compression on Ray Data: folders or datasets of images, on one machine or a cluster.

    pip install "aecodec[ray]"
    import aecodec.distributed as dist
    report = dist.compress_folder("photos/", "out/", quality=6, workers=4)
    ds = dist.compress_dataset(ray.data.read_binary_files("s3://bucket/photos/"))

Each Ray worker is an actor that loads one Codec and keeps it for every batch it
gets (``map_batches`` with an actor pool), so the model loads once per worker, not
once per file. Failures are per file: a bad image gives its row an ``error`` and the
others go on. A worker that crashes is restarted and its batch retried by Ray
(``max_restarts`` / ``max_task_retries``); outputs are written atomically
(``outputs.write_file``), so a crash never leaves a half-written file, and a retried
batch rewrites the same files (the codec is deterministic).

On a cluster, start Ray there and set ``RAY_ADDRESS`` (or call ``ray.init(address=...)``
first): the same call spreads the actors over the nodes. Paths must then be on storage
every node sees.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .outputs import write_file

RETRIES = 3


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401  (the Data library is an extra of ray)
    except ImportError:
        raise RuntimeError('batch compression on Ray needs ray[data]: pip install "aecodec[ray]"') from None
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False,
                 log_to_driver=False, ignore_reinit_error=True)
    return ray


class _Worker:
    """One Codec per Ray actor, built in the actor's process."""

    def __init__(self, task: str, weights, device: str, threads: int, options: dict):
        import torch
        torch.set_num_threads(threads)
        from .codec import Codec
        self.codec = Codec(weights, device=device)
        self.task, self.options = task, options

    def __call__(self, batch: dict) -> dict:
        column = self.options.get("column")
        results, errors = [], []
        for k in range(len(batch[column or "source"])):
            try:
                if column:                       # a dataset of bytes -> a dataset of bytes
                    results.append(self._convert(bytes(batch[column][k])))
                else:                            # files -> files
                    results.append(self._convert(Path(str(batch["source"][k])).read_bytes()))
                    target = Path(str(batch["target"][k]))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    write_file(target, results[-1], self.options.get("force", False))
                errors.append("")
            except (ValueError, OSError, RuntimeError) as exc:   # FormatError, InputError, ... among them
                results.append(b"")
                errors.append(" ".join(str(exc).split()) or type(exc).__name__)
        out = {key: value for key, value in batch.items() if key != column}
        out["bytes_out"] = np.array([len(r) for r in results], dtype=np.int64)
        out["error"] = np.array(errors, dtype=object)
        if column:
            out["result"] = np.array(results, dtype=object)
        return out

    def _convert(self, data: bytes) -> bytes:
        import io
        if self.task == "compress":
            return self.codec.encode(io.BytesIO(data), self.options.get("quality"),
                                     max_bytes=self.options.get("max_bytes"), bpp=self.options.get("bpp"))
        image = self.codec.decode(data)
        buf = io.BytesIO()
        image.save(buf, format=self.options.get("format", "PNG"))
        return buf.getvalue()


def _map(ds, task: str, workers: int, batch_size: int, weights, device: str, options: dict):
    threads = max(1, (os.cpu_count() or 1) // workers) if device == "cpu" else 1
    return ds.map_batches(
        _Worker, fn_constructor_kwargs=dict(task=task, weights=weights, device=device, threads=threads,
                                            options=options),
        batch_size=batch_size, batch_format="numpy", concurrency=workers,
        num_cpus=threads if device == "cpu" else 1, num_gpus=0 if device == "cpu" else 1 / workers,
        max_restarts=RETRIES, max_task_retries=RETRIES)


def _run_pairs(pairs: list[tuple[str, str]], task: str, workers: int, batch_size: int, weights, device: str,
               options: dict) -> list[dict]:
    ray = _ray()
    ds = ray.data.from_items([{"source": s, "target": t} for s, t in pairs])
    rows = _map(ds, task, workers, batch_size, weights, device, options).take_all()
    order = {s: i for i, (s, _) in enumerate(pairs)}
    return sorted(({"source": r["source"], "target": r["target"], "bytes_out": int(r["bytes_out"]),
                    "error": r["error"] or None} for r in rows), key=lambda r: order[r["source"]])


def compress_pairs(pairs, *, quality=None, max_bytes=None, bpp=None, force=False, workers=2, batch_size=4,
                   weights=None, device="cpu") -> list[dict]:
    """Compress each (image path, .aec path); one report row per file, in input order."""
    return _run_pairs(list(pairs), "compress", workers, batch_size, weights, device,
                      dict(quality=quality, max_bytes=max_bytes, bpp=bpp, force=force))


def decompress_pairs(pairs, *, fmt="PNG", force=False, workers=2, batch_size=4, weights=None,
                     device="cpu") -> list[dict]:
    """Decompress each (.aec path, image path); one report row per file, in input order."""
    return _run_pairs(list(pairs), "decompress", workers, batch_size, weights, device,
                      dict(format=fmt, force=force))


def compress_dataset(ds, *, column: str = "bytes", quality=None, max_bytes=None, bpp=None, workers=2,
                     batch_size=4, weights=None, device="cpu"):
    """A Ray Dataset with encoded image files in ``column`` (as ``read_binary_files``
    gives) -> the same rows with ``result`` (.aec bytes) and ``error``."""
    return _map(ds, "compress", workers, batch_size, weights, device,
                dict(quality=quality, max_bytes=max_bytes, bpp=bpp, column=column))


def decompress_dataset(ds, *, column: str = "bytes", fmt: str = "PNG", workers=2, batch_size=4, weights=None,
                       device="cpu"):
    """A Ray Dataset of .aec bytes in ``column`` -> rows with ``result`` (image files) and ``error``."""
    return _map(ds, "decompress", workers, batch_size, weights, device, dict(format=fmt, column=column))
