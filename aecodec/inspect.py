"""What an .aec file holds, from its header (``aecodec info``): no model, no torch."""
from __future__ import annotations

import struct
from pathlib import Path

from .card import default_card, installed_models, quality_of, read_card
from .format import NEAR_DETAIL, NEAR_VERSION, parse


def detail_step(detail: bytes) -> float:
    """The detail layer's quantizer step (its first two bytes, in 1/16 units); 0 without one."""
    return struct.unpack_from(">H", detail)[0] / 16 if len(detail) >= 2 else 0.0


def detail_tilt(detail: bytes, version: int) -> dict | None:
    """A version 3 or 10 detail layer's tilt (the three bytes after the step, in 1/16 units)."""
    if version not in (3, NEAR_VERSION) or len(detail) < 5:     # the detail layout (versions 4-9 files: 3)
        return None
    return dict(zip(("luma", "chroma", "chroma_gain"), (b / 16 for b in detail[2:5])))


def describe(data, weights=None) -> dict:
    """Header facts of an .aec file given as bytes or a path (raises FormatError).

    ``weights`` is the folder a codec would load: its model and the models installed
    beside it (and the shipped ones) count as installed, as they do when decoding."""
    name = None
    if isinstance(data, (str, Path)):
        name = str(data)
        data = Path(data).read_bytes()
    f = parse(data)
    step = detail_step(f.detail)
    default = default_card().get("model_id") == f.model_id.hex()
    folder = installed_models(weights).get(f.model_id)
    card = read_card(folder) if folder is not None else None
    return {
        "file": name,
        "width": f.width, "height": f.height, "mode": f.mode,
        "coded_width": f.coded_size[1], "coded_height": f.coded_size[0],     # smaller where scaled up
        "stages": f.stage_count,
        "stage_bytes": [len(s) for s in f.stages],
        "detail_bytes": len(f.detail), "detail_step": step, "detail_tilt": detail_tilt(*f.unpacked_detail()),
        "alpha_bytes": len(f.alpha),
        "bytes": len(data), "bpp": len(data) * 8 / (f.width * f.height),
        "model_id": f.model_id.hex(), "default_model": default,
        "model_installed": card is not None,         # so this aecodec can decode it
        # the ladder entry of the model that wrote it for these stages at this step
        "quality": quality_of(card["config"], f.stage_count, step, (f.height, f.width), f.coded_size)
        if card is not None else None,
        "format_version": f.version,
        "postfilter": {"id": f.filter_id.hex(), "class": f.filter_class,
                       "intervals": list(f.intervals) or None} if f.filter_id else None,
        "upfilter": {"id": f.upfilter_id.hex(), "class": f.upfilter_class} if f.upfilter_id else None,
        "adaptive": dict(zip(("strength", "floor"), f.adaptive)) if f.adaptive else None,
        "near_contexts": bool(f.detail) and f.detail_version == NEAR_DETAIL,       # version 10
        "zero_tables": f.zeros_id.hex() or None,        # version 11: how the stages are coded
    }
