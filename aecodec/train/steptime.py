"""Time one training step of a config's model in each memory layout and precision.

The fastest setting depends on the CPU: bf16 autocast is about 2.5x cheaper where
oneDNN has AMX (Sapphire Rapids and later) and many times dearer where it has to
emulate bf16 (an AVX2-only EPYC). Measure before a long run, then set the config's
``amp`` and ``channels_last`` to the winner.

    python -m aecodec.train.steptime aecodec/train/configs/v2_lite128.json --threads 2
"""
from __future__ import annotations

import argparse
import time

import torch

from ..model.vqvae import VQVAE
from .config import TrainConfig


def step_seconds(config: TrainConfig, channels_last: bool, amp: bool, steps: int) -> float:
    """Median seconds of ``steps`` quantized training steps on random crops."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    model = VQVAE(config.model).to(memory_format=layout)
    x = torch.rand(config.batch_size, 3, config.crop, config.crop).contiguous(memory_format=layout)
    with torch.no_grad():
        model.quantizer.init_codebooks(model.encoder(x), iters=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    times = []
    for _ in range(steps + 1):                         # the first step warms up oneDNN
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = model(x, config.model.stages)
        loss = (out["x_hat"].float() - x).pow(2).mean() + out["bits"].mean() * 1e-4
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return sorted(times[1:])[len(times[1:]) // 2]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    config = TrainConfig.load(a.config)
    print(f"| layout | precision | ms per step (batch {config.batch_size} x {config.crop}², "
          f"{a.threads} threads) |\n|---|---|---|")
    for channels_last in (False, True):
        for amp in (False, True):
            ms = 1000 * step_seconds(config, channels_last, amp, a.steps)
            print(f"| {'channels_last' if channels_last else 'default'} | {'bf16 autocast' if amp else 'fp32'} "
                  f"| {ms:.0f} |", flush=True)


if __name__ == "__main__":
    main()
