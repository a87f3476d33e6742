"""Model weights: a safetensors file plus a JSON model card that pins its sha256.

A weights folder holds ``model.json`` (the card) and the safetensors file it names.
The hash is checked on every load, and the first 8 bytes of it are the model id
written into every .aec file, so a file is never decoded with weights it was not
made with.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors, save as save_safetensors

from .card import CARD_NAME, Rung, default_weights_dir, newest_format_version
from .detail import Intervals
from .errors import WeightsError
from .model.vqvae import ModelConfig, VQVAE
from .postfilter import PostFilter, from_tensors as postfilter_from_tensors

TABLES_KEY = "entropy.freqs"
ZEROS_KEY = "entropy.zeros"
TRAINING_ONLY = ("quantizer.ema_count", "quantizer.ema_sum")


@dataclass
class LoadedWeights:
    config: ModelConfig
    state_dict: dict
    freqs: np.ndarray
    card: dict
    model_id: bytes
    folder: Path
    postfilter: PostFilter | None = None     # the card's "postfilter", if it names one
    # filters of earlier releases (the card's "earlier_postfilters"): only decoded, so
    # files that name them keep their pixels when a release ships a new filter
    earlier_postfilters: tuple[PostFilter, ...] = ()
    # the card's "upfilter": the filter files coded at a reduced size name to run after
    # scaling up (format version 8), with classes by (stages, step, scale)
    upfilter: PostFilter | None = None
    # the card's "zero_tables": P(code 0) by zero context, which version 11 files code
    # their stages with (entropy/context.py); the id is the first 8 bytes of its sha256
    zero_tables: np.ndarray | None = None
    zero_tables_id: bytes = b""

    def postfilter_for(self, filter_id: bytes) -> PostFilter | None:
        """The filter a file names by ``filter_id``, current or earlier, or None."""
        for filt in (self.postfilter, self.upfilter, *self.earlier_postfilters):
            if filt is not None and filt.filter_id == filter_id:
                return filt
        return None

    def build_model(self) -> VQVAE:
        model = VQVAE(self.config)
        missing, unexpected = model.load_state_dict(self.state_dict, strict=False)
        missing = [k for k in missing if k not in TRAINING_ONLY]
        if missing or unexpected:
            raise WeightsError(f"weights do not fit the model: missing {missing}, unexpected {unexpected}")
        return model.eval()


def load_weights(path: str | Path | None = None) -> LoadedWeights:
    folder = Path(path) if path is not None else default_weights_dir()
    if folder.is_file():
        folder = folder.parent
    card_path = folder / CARD_NAME
    if not card_path.is_file():
        raise WeightsError(f"no model card {CARD_NAME} in {folder}")
    try:
        card = json.loads(card_path.read_text())
        blob_path = folder / card["file"]
        want = card["sha256"]
        config = ModelConfig.from_dict(card["config"])
    except (ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"unreadable model card {card_path}: {exc}") from None
    tensors, digest = read_pinned(blob_path, want, "weights file")
    if TABLES_KEY not in tensors:
        raise WeightsError(f"weights file {blob_path} holds no entropy tables")
    freqs = tensors.pop(TABLES_KEY).numpy().astype(np.int32)
    from .entropy import TableError, validate_tables
    try:
        validate_tables(freqs, config.stages, config.groups, config.codes)
    except TableError as exc:
        raise WeightsError(str(exc)) from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    return LoadedWeights(config, state, freqs, card, bytes.fromhex(digest[:16]), folder,
                         _load_postfilter(card, folder, "postfilter"), _load_earlier_postfilters(card, folder),
                         _load_postfilter(card, folder, "upfilter"), *_load_zero_tables(card, folder, config))


def _load_zero_tables(card: dict, folder: Path, config: ModelConfig) -> tuple[np.ndarray | None, bytes]:
    """(tables, id) of the card's "zero_tables" entry (``{"file": ..., "sha256": ...}``),
    or (None, b"") where it names none: the encoder then writes version 10 files."""
    entry = card.get("zero_tables")
    if entry is None:
        return None, b""
    try:
        path, sha256 = folder / entry["file"], entry["sha256"]
    except (KeyError, TypeError) as exc:
        raise WeightsError(f"unreadable zero_tables entry in the model card: {exc}") from None
    tensors, digest = read_pinned(path, sha256, "zero tables")
    if ZEROS_KEY not in tensors:
        raise WeightsError(f"zero tables file {path} holds no {ZEROS_KEY}")
    zeros = tensors[ZEROS_KEY].numpy().astype(np.int64)
    from .entropy import TableError, validate_zero_tables
    try:
        validate_zero_tables(zeros, config.stages, config.groups)
    except TableError as exc:
        raise WeightsError(str(exc)) from None
    return zeros, bytes.fromhex(digest[:16])


def save_zero_tables(folder: str | Path, zeros: np.ndarray, entry: dict) -> dict:
    """Write ``zeros`` (entropy.tables.quantize_zero_counts) beside a card and name them
    in it under "zero_tables" with ``entry``'s notes; returns the new card."""
    folder = Path(folder)
    blob = save_safetensors({ZEROS_KEY: torch.from_numpy(zeros.astype(np.uint16))},   # entries < 2**16
                            metadata={"format": "aecodec-zero-tables"})
    digest = hashlib.sha256(blob).hexdigest()
    name = f"zero-tables-{digest[:16]}.safetensors"
    (folder / name).write_bytes(blob)
    card = json.loads((folder / CARD_NAME).read_text())
    card["zero_tables"] = {**entry, "file": name, "sha256": digest}
    card["format_version"] = newest_format_version(card)
    (folder / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n")
    return card


def read_pinned(path: Path, sha256: str, what: str) -> tuple[dict, str]:
    """(tensors, sha256) of a safetensors file whose sha256 the model card pins."""
    if not path.is_file():
        raise WeightsError(f"{what} {path} is missing")
    blob = path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != sha256:
        raise WeightsError(f"{what} {path} has sha256 {digest[:16]}..., "
                           f"model card expects {sha256[:16]}...: truncated or tampered with")
    try:
        return load_safetensors(blob), digest
    except (SafetensorError, ValueError) as exc:
        raise WeightsError(f"{what} {path} is not valid safetensors: {exc}") from None


def _read_postfilter(entry, folder: Path) -> PostFilter:
    """The filter of a card entry ``{"file": ..., "sha256": ...}``, checked."""
    try:
        path, sha256 = folder / entry["file"], entry["sha256"]
    except (KeyError, TypeError) as exc:
        raise WeightsError(f"unreadable post-filter entry in the model card: {exc}") from None
    tensors, digest = read_pinned(path, sha256, "post-filter")
    return postfilter_from_tensors(tensors, bytes.fromhex(digest)[:8], f"post-filter {path}")


def _load_earlier_postfilters(card: dict, folder: Path) -> tuple[PostFilter, ...]:
    entries = card.get("earlier_postfilters", [])
    if not isinstance(entries, list):
        raise WeightsError("the model card's earlier_postfilters must be a list")
    return tuple(_read_postfilter(entry, folder) for entry in entries)


def _load_postfilter(card: dict, folder: Path, key: str):
    """The filter the card names under ``key`` (``{"file": ..., "sha256": ..., "classes":
    ...}``), or None; the encoder writes files for it. "postfilter" runs at the coded
    size, "upfilter" after scaling up; their classes are [stages, step(, scale)]."""
    entry = card.get(key)
    if entry is None:
        return None
    filt = _read_postfilter(entry, folder)
    try:
        rungs = tuple(Rung.of(rung) for rung in entry["classes"])
        if any(len(rung) not in (2, 3) for rung in entry["classes"]):
            raise ValueError("each is [stages, step] or [stages, step, scale]")
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise WeightsError(f"the model card's {key} entry needs its classes' (stages, step[, scale]): {exc}") from None
    if len(rungs) != filt.classes:
        raise WeightsError(f"the {key} has {filt.classes} classes, the model card names {len(rungs)}")
    if key == "upfilter" and any(rung.scale == 1 for rung in rungs):
        raise WeightsError("the model card's upfilter classes are rungs coded at a reduced size (scale above 1)")
    intervals = b""
    if "intervals" in entry:
        try:
            intervals = Intervals(*entry["intervals"]).to_bytes()
        except (TypeError, ValueError) as exc:
            raise WeightsError(f"the model card's post-filter intervals are not 3 bytes: {exc}") from None
    return replace(filt, class_rungs=rungs, intervals=intervals)


def save_weights(folder: str | Path, model: VQVAE, freqs: np.ndarray, card: dict,
                 name: str = "aecodec-default.safetensors") -> dict:
    """Write the safetensors file (half precision, training-only buffers dropped) and card."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous()
               for k, v in model.state_dict().items() if k not in TRAINING_ONLY}
    tensors[TABLES_KEY] = torch.from_numpy(freqs.astype(np.uint16))   # entries < 2**16
    blob = save_safetensors(tensors, metadata={"format": "aecodec"})
    (folder / name).write_bytes(blob)
    digest = hashlib.sha256(blob).hexdigest()
    card = {**card, "file": name, "sha256": digest, "model_id": digest[:16],
            "config": model.config.to_dict()}
    (folder / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n")
    return card
