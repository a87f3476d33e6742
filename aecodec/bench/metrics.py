"""Quality metrics on 8-bit RGB, per image (DESIGN.md's protocol)."""
from __future__ import annotations

import numpy as np

# pytorch_msssim's 11-tap window must still fit after four halvings: it asserts that
# each side is over 160 pixels.
MS_SSIM_MIN_SIDE = 161


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(decoded, dtype=np.float64)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ms_ssim(reference: np.ndarray, decoded: np.ndarray) -> float:
    """pytorch_msssim.ms_ssim(data_range=255) on HxWx3 uint8 images."""
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim
    a = torch.from_numpy(np.array(reference)).permute(2, 0, 1)[None].float()
    b = torch.from_numpy(np.array(decoded)).permute(2, 0, 1)[None].float()
    return float(_ms_ssim(a, b, data_range=255))


def ms_ssim_db(value: float) -> float:
    return float(-10 * np.log10(max(1e-12, 1 - value)))
