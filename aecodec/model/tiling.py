"""Run the transforms over large images in overlapping tiles, so memory stays bounded.

Each tile is extended by a halo wider than the network's receptive field and only its
centre is kept, so seams cannot appear; an image that fits in one tile goes through
in one piece, exactly as without tiling.

Only tiles are ever held in float: the encoder reads 8-bit pixels and pads each tile
itself, the decoder asks for each tile's latent (dequantized from the indices on
demand). What grows with the image is then the uint8 pixels, the latent and the
indices, a few bytes per pixel; the networks' activations are bounded by the tile.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_TILE = 64     # latent cells per tile side: 1024 pixels at stride 16


def _spans(n: int, tile: int):
    for start in range(0, n, tile):
        yield start, min(n, start + tile)


def _windows(h: int, w: int, tile: int, halo: int):
    """(i0, i1, j0, j1) of each tile and (a0, a1, b0, b1) of it with its halo, in cells."""
    for i0, i1 in _spans(h, tile):
        for j0, j1 in _spans(w, tile):
            yield (i0, i1, j0, j1), (max(0, i0 - halo), min(h, i1 + halo), max(0, j0 - halo), min(w, j1 + halo))


def _as_input(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """A tile of pixels (uint8 0..255, or float in [0, 1]) as float in [0, 1], its
    missing rows and columns (past the image's edge) repeated from the last ones."""
    x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    pad_h, pad_w = rows - x.shape[2], cols - x.shape[3]
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x


@torch.no_grad()
def encode_tiled(encoder: Callable, x: torch.Tensor, tile: int, stride: int, halo: int) -> torch.Tensor:
    """x [n, 3, H, W] of any size (uint8, or float in [0, 1]) -> latent [n, C, h, w]
    with h, w = ceil(H / stride), ceil(W / stride): the image is padded to a multiple
    of the stride by repeating its edge. ``halo``: latent cells beyond the network's
    receptive field."""
    height, width = x.shape[2:]
    h, w = -(-height // stride), -(-width // stride)
    out = None
    for (i0, i1, j0, j1), (a0, a1, b0, b1) in _windows(h, w, tile, halo):
        piece = _as_input(x[:, :, a0 * stride:a1 * stride, b0 * stride:b1 * stride],
                          (a1 - a0) * stride, (b1 - b0) * stride)
        y = encoder(piece)
        if out is None:
            out = y.new_empty(x.shape[0], y.shape[1], h, w)
        out[:, :, i0:i1, j0:j1] = y[:, :, i0 - a0:i1 - a0, j0 - b0:j1 - b0]
    return out


@torch.no_grad()
def decode_tiled(decoder: Callable, latent: Callable, n: int, cells: tuple[int, int], height: int,
                 width: int, tile: int, stride: int, halo: int) -> np.ndarray:
    """-> uint8 RGB [n, height, width, 3], cropped to the image. ``latent(a0, a1, b0, b1)``
    gives the latent [n, C, a1 - a0, b1 - b0] of those rows and columns of the grid
    ``cells``, so only one tile's latent is ever made."""
    h, w = cells
    out = np.empty((n, height, width, 3), dtype=np.uint8)
    for (i0, i1, j0, j1), (a0, a1, b0, b1) in _windows(h, w, tile, halo):
        r0, c0 = i0 * stride, j0 * stride
        r1, c1 = min(height, i1 * stride), min(width, j1 * stride)
        if r0 >= r1 or c0 >= c1:
            continue
        x = decoder(latent(a0, a1, b0, b1))
        top, left = (i0 - a0) * stride, (j0 - b0) * stride            # the tile's centre in its halo
        x = x[:, :, top:top + r1 - r0, left:left + c1 - c0]
        out[:, r0:r1, c0:c1] = x.clamp(0, 1).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return out
