"""The model card (``model.json`` beside the weights), read without torch.

The card says which safetensors file holds the weights and its sha256, the model
config, and the quality ladder: what quality q writes. Everything that needs only
these facts (the quality range in the CLI help, ``aecodec.QUALITIES``, ``info``)
reads them here, so ``import aecodec`` and ``aecodec --help`` load no torch.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from .format import FILTER_VERSION, NEAR_VERSION, SCALED_VERSION, UPFILTER_VERSION, ZEROS_VERSION

CARD_NAME = "model.json"
DEFAULT_QUALITY = 7


def default_weights_dir() -> Path:
    """The shipped default weights: installed as package data, or the repo's weights/."""
    try:
        from importlib.resources import files
        installed = Path(str(files("aecodec") / "default_weights"))
        if (installed / CARD_NAME).is_file():
            return installed
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "weights"


class Rung(NamedTuple):
    """What one quality writes: RVQ stages, the detail layer's step (0: none), and how
    many times smaller than the photo the image is coded (1: at its own size)."""
    stages: int
    step: float
    scale: float = 1.0

    @classmethod
    def of(cls, entry) -> "Rung":
        """A rung from [stages, step] or [stages, step, scale] (a card's, an array row)."""
        return cls(int(entry[0]), float(entry[1]), float(entry[2]) if len(entry) > 2 else 1.0)


def ladder_of(config: dict) -> tuple[Rung, ...]:
    """The rung of qualities 1, 2, ...: the card's ``ladder`` ([stages, step] or
    [stages, step, scale] each), or, where it has none, quality q = q stages."""
    ladder = config.get("ladder") or [(s, 0.0) for s in range(1, int(config["stages"]) + 1)]
    return tuple(Rung.of(entry) for entry in ladder)


def model_library(*roots: Path) -> dict[bytes, Path]:
    """Model id -> weights folder, for every folder among ``roots`` and their direct
    subfolders that holds a readable card. A file names the model that wrote it, so
    the newest default can decode the files of the models it replaced (kept as
    subfolders of ``weights/``)."""
    found: dict[bytes, Path] = {}
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for folder in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
            try:
                model_id = bytes.fromhex(read_card(folder)["sha256"][:16])
            except (OSError, ValueError, KeyError, TypeError):
                continue            # no card or an unreadable one: not a model (load_weights says why)
            found.setdefault(model_id, folder)
    return found


def installed_models(weights=None) -> dict[bytes, Path]:
    """The models a codec loaded from ``weights`` (default: the shipped folder) can
    decode: those of that folder and its subfolders, then the shipped ones. The one
    rule shared by decoding and ``aecodec info``."""
    roots = (Path(weights), default_weights_dir()) if weights else (default_weights_dir(),)
    return model_library(*roots)


def read_card(folder: Path) -> dict:
    return json.loads((Path(folder) / CARD_NAME).read_text())


@lru_cache(maxsize=8)
def _default_card() -> dict:
    return read_card(default_weights_dir())


def default_card() -> dict:
    """The shipped model card (read once)."""
    return _default_card()


def default_qualities() -> tuple[int, ...]:
    return tuple(range(1, len(ladder_of(default_card()["config"])) + 1))


def quality_of(config: dict, stages: int, detail_step: float, size: tuple[int, int],
               coded_size: tuple[int, int]) -> int | None:
    """The ladder quality that writes ``stages`` stages with ``detail_step`` (0: no
    detail layer), over one stage more where the card's ``deeper_base`` rule allows it,
    coding a photo of ``size`` at ``coded_size`` (both (height, width)); None when a
    budget fitted the file between two qualities."""
    deeper_up_to = (config.get("deeper_base") or (0.0,))[0]
    for q, rung in enumerate(ladder_of(config), start=1):
        deeper = 0 < rung.step <= deeper_up_to and rung.stages + 1 == stages
        if (rung.stages == stages or deeper) and abs(rung.step - detail_step) < 1e-9 \
                and coded_shape(*size, rung.scale) == tuple(coded_size):
            return q
    return None


def newest_format_version(card: dict) -> int:
    """The newest .aec version the encoder writes with this card's ladder and filters
    (its "format_version"): 11 for every file where the card names zero tables; else
    10 where a rung has a detail layer (its steps adapt to each block and its levels are
    coded with near-frequency contexts, whatever the card); else 8 where a rung codes a
    reduced size and the card names a filter after scaling up, 7 where only the first;
    else 4 with a post-filter, else 1."""
    if card.get("zero_tables"):
        return ZEROS_VERSION
    ladder = ladder_of(card.get("config", {})) if card.get("config", {}).get("ladder") else ()
    if any(rung.step for rung in ladder):
        return NEAR_VERSION
    if any(rung.scale != 1 for rung in ladder):
        return UPFILTER_VERSION if card.get("upfilter") else SCALED_VERSION
    return FILTER_VERSION if card.get("postfilter") else 1


def coded_shape(height: int, width: int, scale: float) -> tuple[int, int]:
    """The (height, width) a photo is coded at by a rung ``scale`` times smaller
    (the photo's own where that rounds to it)."""
    return max(1, round(height / scale)), max(1, round(width / scale))
