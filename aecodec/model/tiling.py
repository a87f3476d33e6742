"""Run the transforms over large images in overlapping tiles, so memory stays bounded.

Each tile is extended by a halo wider than the network's receptive field and only its
centre is kept, so seams cannot appear; an image that fits in one tile goes through
in one piece, exactly as without tiling.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

DEFAULT_TILE = 64     # latent cells per tile side: 1024 pixels at stride 16



def _spans(n: int, tile: int):
    for start in range(0, n, tile):
        yield start, min(n, start + tile)


@torch.no_grad()
def encode_tiled(encoder: Callable, x: torch.Tensor, tile: int, stride: int, halo: int) -> torch.Tensor:
    """x [n, 3, H, W] (multiples of ``stride``) -> latent [n, C, H/stride, W/stride].
    ``halo``: latent cells beyond the network's receptive field."""
    STRIDE, HALO = stride, halo
    h, w = x.shape[2] // STRIDE, x.shape[3] // STRIDE
    if h <= tile and w <= tile:
        return encoder(x)
    out = None
    for i0, i1 in _spans(h, tile):
        for j0, j1 in _spans(w, tile):
            a0, a1 = max(0, i0 - HALO), min(h, i1 + HALO)
            b0, b1 = max(0, j0 - HALO), min(w, j1 + HALO)
            y = encoder(x[:, :, a0 * STRIDE:a1 * STRIDE, b0 * STRIDE:b1 * STRIDE])
            if out is None:
                out = y.new_empty(x.shape[0], y.shape[1], h, w)
            out[:, :, i0:i1, j0:j1] = y[:, :, i0 - a0:i1 - a0, j0 - b0:j1 - b0]
    return out


@torch.no_grad()
def decode_tiled(decoder: Callable, y: torch.Tensor, height: int, width: int,
                 tile: int, stride: int, halo: int) -> np.ndarray:
    """latents [n, C, h, w] -> uint8 RGB [n, height, width, 3], cropped to the image."""
    STRIDE, HALO = stride, halo
    h, w = y.shape[2], y.shape[3]
    out = np.empty((y.shape[0], height, width, 3), dtype=np.uint8)
    for i0, i1 in _spans(h, tile):
        for j0, j1 in _spans(w, tile):
            a0, a1 = max(0, i0 - HALO), min(h, i1 + HALO)
            b0, b1 = max(0, j0 - HALO), min(w, j1 + HALO)
            x = decoder(y[:, :, a0:a1, b0:b1])
            x = x[:, :, (i0 - a0) * STRIDE:(i1 - a0) * STRIDE, (j0 - b0) * STRIDE:(j1 - b0) * STRIDE]
            r0, c0 = i0 * STRIDE, j0 * STRIDE
            r1, c1 = min(height, i1 * STRIDE), min(width, j1 * STRIDE)
            if r0 >= r1 or c0 >= c1:
                continue
            x = x[:, :, :r1 - r0, :c1 - c0]
            out[:, r0:r1, c0:c1] = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return out
