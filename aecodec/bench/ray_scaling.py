"""Images per second through the Ray path with 1 and 2 workers (``aecodec[ray]``).

    python -m aecodec.bench.ray_scaling [--images ../shared/data/kodak] [--out benchmarks/results/ray]

Each run is one Ray Data job over the whole folder: worker start-up (import torch, load
the model) is included, as a user would see it, and reported apart from the steady rate.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", default="../shared/data/kodak")
    p.add_argument("--out", default="benchmarks/results/ray")
    p.add_argument("--quality", type=int, default=6)
    p.add_argument("--workers", default="1,2")
    a = p.parse_args(argv)
    import ray
    from .. import distributed
    from ..imageio import list_images
    files = list_images(Path(a.images))
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in [int(w) for w in a.workers.split(",")]:
            pairs = [(str(f), str(Path(tmp) / f"{workers}" / (f.stem + ".aec"))) for f in files]
            start = time.perf_counter()
            report = distributed.compress_pairs(pairs[:workers], quality=a.quality, workers=workers,
                                                batch_size=1, force=True)
            startup = time.perf_counter() - start            # a job as small as the pool: mostly start-up
            start = time.perf_counter()
            report = distributed.compress_pairs(pairs, quality=a.quality, workers=workers, batch_size=2,
                                                force=True)
            wall = time.perf_counter() - start
            failed = sum(1 for r in report if r["error"])
            rows.append({"workers": workers, "images": len(files), "failed": failed, "wall_s": round(wall, 2),
                         "images_per_s": round(len(files) / wall, 3), "small_job_s": round(startup, 2),
                         "cpu_count": os.cpu_count(), "quality": a.quality})
            print(json.dumps(rows[-1]), flush=True)
    ray.shutdown()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ray-scaling.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["| workers | images | wall s | images/s | job of one image per worker, s |", "|---|---|---|---|---|"]
    lines += [f"| {r['workers']} | {r['images']} | {r['wall_s']} | {r['images_per_s']} | {r['small_job_s']} |"
              for r in rows]
    (out / "ray-scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
