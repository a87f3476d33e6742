"""What an .aec file holds, from its header (``aecodec info``): no model, no torch."""
from __future__ import annotations

import struct
from pathlib import Path

from .card import default_card, quality_of
from .format import parse


def detail_step(detail: bytes) -> float:
    """The detail layer's quantizer step (its first two bytes, in 1/16 units); 0 without one."""
    return struct.unpack_from(">H", detail)[0] / 16 if len(detail) >= 2 else 0.0


def describe(data) -> dict:
    """Header facts of an .aec file given as bytes or a path (raises FormatError)."""
    name = None
    if isinstance(data, (str, Path)):
        name = str(data)
        data = Path(data).read_bytes()
    f = parse(data)
    step = detail_step(f.detail)
    card = default_card()
    default = card.get("model_id") == f.model_id.hex()
    return {
        "file": name,
        "width": f.width, "height": f.height, "mode": f.mode,
        "stages": f.stage_count,
        "stage_bytes": [len(s) for s in f.stages],
        "detail_bytes": len(f.detail), "detail_step": step,
        "alpha_bytes": len(f.alpha),
        "bytes": len(data), "bpp": len(data) * 8 / (f.width * f.height),
        "model_id": f.model_id.hex(), "default_model": default,
        # the ladder entry that writes these stages at this step, for the default model
        "quality": quality_of(card["config"], f.stage_count, step) if default else None,
        "format_version": f.version,
    }
