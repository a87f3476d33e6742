"""Command-line entry for training and exporting (also reachable as ``aecodec train``)."""
from __future__ import annotations

from pathlib import Path

import click
import torch


@click.command("train")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--max-steps", type=int, default=None, help="Stop after this many steps (resume later).")
@click.option("--max-minutes", type=float, default=None, help="Stop after this much wall time.")
@click.option("--threads", type=int, default=None, help="CPU threads for torch.")
@click.option("--init-from", type=click.Path(exists=True), default=None,
              help="Start from exported weights (a weights folder) instead of scratch.")
def main(config, run_dir, max_steps, max_minutes, threads, init_from):
    """Train (or resume) a model from CONFIG into RUN_DIR.

    On several GPUs: torchrun --nproc_per_node N -m aecodec.train CONFIG RUN_DIR
    """
    from .config import TrainConfig
    from .loop import Trainer

    if threads:
        torch.set_num_threads(threads)
    init_state = None
    if init_from is not None:
        from ..weights import load_weights
        init_state = load_weights(Path(init_from)).state_dict
    trainer = Trainer(TrainConfig.load(config), Path(run_dir), init_state)
    trainer.train(max_steps=max_steps, max_seconds=None if max_minutes is None else max_minutes * 60)
    if trainer.rank == 0:
        if trainer.validated_at != trainer.step:       # the loop may just have validated
            trainer.validate()
        from .loop import write_resume
        write_resume(Path(run_dir))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
