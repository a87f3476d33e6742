"""The errors aecodec raises on purpose, importable without torch.

Every one is a ValueError or RuntimeError subclass with a one-line message, so callers
can catch the family or the specific case.
"""
from __future__ import annotations

from .format import FormatError
from .imageio import InputError


class WeightsError(RuntimeError):
    """Weights that are missing, truncated, tampered with or inconsistent."""


class DeviceError(RuntimeError):
    """A device that is not known or not present (e.g. 'cuda' without a GPU)."""

    def __init__(self, message: str, device: str = "", missing_gpu: bool = False):
        super().__init__(message)
        self.device = device
        self.missing_gpu = missing_gpu     # front ends add their own hint (device='cpu', --device cpu)


__all__ = ["FormatError", "InputError", "WeightsError", "DeviceError"]
