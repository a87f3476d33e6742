"""Codec: loaded weights on a device; image <-> .aec bytes.

Data flows one way: imageio -> model.compress (pads, tiles) -> entropy coder -> format,
and back. Only the networks run on the device; entropy coding is numpy + constriction
on integer tables, so a file decodes the same on any machine.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from . import alpha as alpha_plane, detail, format as aec_format, ratecontrol, resample
from .card import DEFAULT_QUALITY, Rung, coded_shape, installed_models
from .entropy import PayloadError, decode_stage, encode_stage, min_bits_per_position, min_bits_with_zeros
from .errors import DeviceError
from .format import AecFile, FormatError
from .imageio import Pixels, load as load_pixels, to_pil
from .model.exact import exact_context, exact_copy
from .model.tiling import DEFAULT_TILE
from .weights import LoadedWeights, load_weights

FOLLOW_PILLOW = "pillow"            # max_pixels default: Pillow's bomb limit, read at each call


def pixel_limit(max_pixels) -> int | None:
    """The pixel limit in force: an int, None (no limit), or FOLLOW_PILLOW, which is
    the size at which Pillow refuses a decompression bomb (2 * Image.MAX_IMAGE_PIXELS)."""
    if max_pixels == FOLLOW_PILLOW:
        return None if Image.MAX_IMAGE_PIXELS is None else 2 * int(Image.MAX_IMAGE_PIXELS)
    return max_pixels


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)", str(device)) from None
    if dev.type not in ("cpu", "cuda"):
        raise DeviceError(f"unsupported device {device!r} (use auto, cpu, cuda or cuda:N)", str(device))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' was asked for, but PyTorch sees no CUDA GPU here "
                          "(use device='cpu', or install a CUDA build of torch)", str(device), missing_gpu=True)
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device {device!r} does not exist: PyTorch sees {torch.cuda.device_count()} "
                          f"GPU(s)", str(device))
    return dev


class Codec:
    """A model loaded once for many encode/decode calls."""

    def __init__(self, weights: str | None = None, device: str = "auto",
                 max_pixels: int | None | str = FOLLOW_PILLOW, tile: int = DEFAULT_TILE,
                 exact: bool = True):
        """``max_pixels`` refuses larger images, checked from the header before any
        pixel is decoded (None: no limit; default: Pillow's own bomb limit); ``tile``
        is the tile side in latent cells for large images (memory grows with its
        square). ``exact=False`` decodes with the plain float32 network (about 2x faster
        decoding on a CPU), but the pixels may then differ by up to three levels (one in the
        base image, which the post-filter and its intervals may widen; four where a file is
        coded at a reduced size and filtered again after scaling up) from other machines',
        thread counts' and batches' (encoding on a GPU uses the exact decoder for the
        base image its detail layer is coded against, so that the layer fits what exact
        decoders see; on a CPU the float32 one, ``_encoder_bases``)."""
        if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
            raise ValueError(f"tile must be a positive integer, not {tile!r}")
        if max_pixels != FOLLOW_PILLOW and max_pixels is not None and (
                isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1):
            raise ValueError(f"max_pixels must be a positive integer or None, not {max_pixels!r}")
        self.weights: LoadedWeights = load_weights(weights)
        self.device = resolve_device(device)
        self.model = self.weights.build_model().to(self.device)
        # The decoder that makes pixels: exact, so that a file gives the same pixels on
        # every machine, thread count and batch (model/exact.py).
        self.synthesis = exact_copy(self.model.decoder, self.device)
        self.exact = bool(exact)
        self.freqs = self.weights.freqs
        # with the card's zero tables the stages are coded as format version 11 says
        self.zeros, self.zeros_id = self.weights.zero_tables, self.weights.zero_tables_id
        self._min_bits = {b"": min_bits_per_position(self.freqs)}
        if self.zeros is not None:
            self._min_bits[self.zeros_id] = min_bits_with_zeros(self.freqs, self.zeros)
        self.max_pixels = max_pixels
        self.tile = tile
        self._other_models: dict[bytes, Codec] = {}     # loaded when a file names them

    # -- public properties -----------------------------------------------------------
    @property
    def qualities(self) -> tuple[int, ...]:
        return tuple(range(1, len(self.ladder) + 1))

    @property
    def ladder(self) -> tuple[Rung, ...]:
        """The rung (RVQ stages, detail step or 0, scale) each quality writes, from the model card."""
        return self.weights.config.quality_ladder()

    @property
    def model_id(self) -> str:
        return self.weights.model_id.hex()

    # -- the public door for tools (bench, training export): no private calls needed ----
    def indices(self, images, n_stages: int, batch: int = 8, scale: float = 1.0) -> list[np.ndarray]:
        """Codebook indices [n_stages, G, h, w] per image, from the encoder's search (of
        the image ``scale`` times smaller, as a rung at that scale codes it)."""
        if isinstance(n_stages, bool) or not isinstance(n_stages, int) \
                or not 1 <= n_stages <= self.weights.config.stages:
            raise ValueError(f"n_stages must be from 1 to {self.weights.config.stages}, not {n_stages!r}")
        self._check_scale(scale)
        return self._indices_batched([self._coded_pixels(self.load(image), scale) for image in images],
                                     n_stages, batch)

    def synthesize(self, indices: np.ndarray, height: int, width: int) -> np.ndarray:
        """The decoder's uint8 RGB image [height, width, 3] from indices [S, G, h, w]."""
        return self._synthesize([indices], height, width)[0]

    def encode_at(self, image, stages: int, step: float = 0.0, scale: float = 1.0) -> bytes:
        """A file of ``stages`` stages with a detail layer at ``step`` (0: none), of the
        image coded ``scale`` times smaller, whether or not the ladder has that rung
        (for choosing a ladder)."""
        if isinstance(stages, bool) or not isinstance(stages, int) or not 1 <= stages <= self.weights.config.stages:
            raise ValueError(f"stages must be from 1 to {self.weights.config.stages}, not {stages!r}")
        if step and not detail.MIN_STEP <= step <= detail.MAX_STEP:
            raise ValueError(f"detail step must be 0 or from {detail.MIN_STEP} to {detail.MAX_STEP}, not {step!r}")
        self._check_scale(scale)
        return self._encode_pixels([self.load(image)], Rung(stages, float(step), float(scale)), 1)[0].to_bytes()

    @staticmethod
    def _check_scale(scale) -> None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 1 <= scale <= resample.MAX_SCALE:
            raise ValueError(f"scale must be from 1 to {resample.MAX_SCALE}, not {scale!r}")

    def set_search(self, beam: int, scale: float) -> None:
        """The encoder-side codeword search (decoding never depends on it): partial
        paths kept across stages and a multiplier on the bit costs."""
        from dataclasses import replace
        checked = replace(self.weights.config, search_beam=beam, search_scale=scale)   # validates
        self.model.quantizer.search_beam = checked.search_beam
        self.model.quantizer.search_scale = float(checked.search_scale)

    def entropy_code(self, indices: np.ndarray) -> tuple[bytes, ...]:
        """One payload per stage of indices [S, G, h, w] (what a file's stages hold)."""
        return self._payloads(indices)

    def entropy_decode(self, payloads, height: int, width: int, zeros_id: bytes | None = None) -> np.ndarray:
        """Inverse of ``entropy_code`` for an image of ``height`` x ``width`` pixels; a
        file's ``zeros_id`` (b"" before version 11) says how its stages are coded."""
        zeros = self._zero_tables(self.zeros_id if zeros_id is None else zeros_id)
        h, w = self._cells(height, width)
        out, prev = [], None
        for s, payload in enumerate(payloads):
            try:
                prev = decode_stage(self.freqs, payload, prev, s, self.weights.config.groups, h, w, zeros)
            except PayloadError as exc:
                raise FormatError(str(exc)) from None
            out.append(prev)
        return np.stack(out)

    # -- encode ----------------------------------------------------------------------
    def encode(self, image, quality: int | None = None, *, max_bytes: int | None = None,
               bpp: float | None = None) -> bytes:
        """Encode to .aec bytes. With a budget (max_bytes or bpp): the highest quality up
        to ``quality`` (default: the highest) whose file fits, the detail step then
        made as fine as the budget allows (``_fit``)."""
        return self.encode_many([image], quality, max_bytes=max_bytes, bpp=bpp)[0]

    def encode_many(self, images, quality: int | None = None, *, max_bytes: int | None = None,
                    bpp: float | None = None, batch: int = 8) -> list[bytes]:
        """``encode`` for each image, with the networks run on up to ``batch`` images of
        the same size at once (what keeps a GPU busy on folders of small photos). Each
        file is the same as ``encode`` would write, up to the last float bit."""
        budgeted = max_bytes is not None or bpp is not None
        quality = self._check_quality(quality, budgeted)
        if not budgeted:
            pixels = [self.load(image) for image in images]
            return [f.to_bytes() for f in self._encode_pixels(pixels, self.ladder[quality - 1], batch)]
        self._budget(max_bytes, bpp, 1)              # bad budget arguments fail before any work
        ladder = self.ladder[:quality]
        pixels = [self.load(image) for image in images]
        # one batched search for the rungs at full size; a scaled rung's is made when tried
        full = max((rung.stages for rung in ladder if rung.scale == 1), default=0)
        indices = self._indices_batched(pixels, full, batch) if full else [None] * len(pixels)
        return [self._fit(px, idx, ladder, self._budget(max_bytes, bpp, px.width * px.height)).to_bytes()
                for px, idx in zip(pixels, indices)]

    def _encode_pixels(self, pixels: list[Pixels], rung: Rung, batch: int) -> list[AecFile]:
        """Files of ``rung.stages`` stages, with a detail layer at ``rung.step`` unless it
        is 0 (over one stage more where the card's ``deeper_base`` rule says so), of the
        photos coded ``rung.scale`` times smaller."""
        n_stages, step = rung.stages, rung.step
        coded = [self._coded_pixels(px, rung.scale) for px in pixels]
        indices = self._indices_batched(coded, n_stages, batch)
        payloads = [self._payloads(idx) for idx in indices]
        details = [b""] * len(pixels)
        if step:
            for k, px in enumerate(coded):
                if self._wants_deeper_base(px, payloads[k], step):
                    indices[k], payloads[k] = self._deeper_stages(px, n_stages)
            # The detail layer codes what the decoder's own base image misses.
            bases = self._batched(list(zip(indices, coded)),
                                  lambda item: self._base_key(item[0], item[1].height, item[1].width),
                                  lambda part: self._encoder_bases([idx for idx, _ in part], part[0][1].height,
                                                                   part[0][1].width), self._base_batch(batch))
            details = [detail.encode(px.rgb, base, step, detail.activity(idx), adaptive=detail.ADAPTIVE, near=True)
                       for px, base, idx in zip(coded, bases, indices)]
        return [self._file(px, c, p, extra, step, rung.scale) for px, c, p, extra in zip(pixels, coded, payloads, details)]

    @staticmethod
    def _coded_pixels(px: Pixels, scale: float) -> Pixels:
        """What a rung ``scale`` times smaller codes of ``px`` (``px`` itself at scale 1);
        the alpha plane stays with the photo, at its own size."""
        height, width = coded_shape(px.height, px.width, scale)
        if (height, width) == (px.height, px.width):
            return px
        return Pixels(resample.scale_down(px.rgb, height, width), px.mode, None)

    def _encoder_bases(self, indices: list[np.ndarray], height: int, width: int) -> list[np.ndarray]:
        """The base images the encoder codes detail layers against.

        On a CPU the float32 decoder: 3x faster than the exact one (0.1 against 0.3 s
        for a Kodak photo), within one level of it on about 3% of pixels, which cost at
        most 0.009 dB at the finest ladder step on held-out photos (TRAINING_LOG Part
        14). On a GPU float32 convolutions may run in TF32, further from the exact
        pixels, so the encoder keeps the exact decoder there."""
        return self._synthesize(indices, height, width, exact=self.device.type != "cpu")

    def _wants_deeper_base(self, px: Pixels, payloads: tuple[bytes, ...], step: float) -> bool:
        """The card's ``deeper_base`` rule for a detail layer at ``step`` over these stages."""
        rule, stages = self.weights.config.deeper_base, self.weights.config.stages
        return (bool(rule) and len(payloads) < stages and 0 < step <= rule[0]
                and sum(map(len, payloads)) * 8 < rule[1] * px.width * px.height)

    def _deeper_stages(self, px: Pixels, n_stages: int) -> tuple[np.ndarray, tuple[bytes, ...]]:
        """(indices, stage payloads) of a fresh search for one stage more than
        ``n_stages``: the beam places every stage for the last (a stage added to the
        ``n_stages`` path loses 1.4%, TRAINING_LOG Part 22)."""
        indices = self._indices_batched([px], n_stages + 1, 1)[0]
        return indices, self._payloads(indices)

    def _base_batch(self, batch: int) -> int:
        """Images per base-image batch: one on a CPU, where the float32 decoder's bits
        could depend on the batch (so ``encode_many`` writes what ``encode`` does)."""
        return batch if self.device.type != "cpu" else 1

    def _indices_batched(self, pixels: list[Pixels], n_stages: int, batch: int) -> list[np.ndarray]:
        return self._batched(pixels, lambda px: (*self._cells(px.height, px.width), px.height, px.width),
                             lambda part: self._indices(part, n_stages), batch)

    def _payloads(self, indices: np.ndarray) -> tuple[bytes, ...]:
        return tuple(encode_stage(self.freqs, indices, s, self.zeros) for s in range(indices.shape[0]))

    def _zero_tables(self, zeros_id: bytes) -> np.ndarray | None:
        """The zero tables a file's ``zeros_id`` names (None for b"": version 1-10 stages)."""
        if zeros_id and zeros_id != self.zeros_id:
            raise FormatError(f"file's stages are coded with zero tables {zeros_id.hex()}, which these "
                              f"weights do not have (they have {self.zeros_id.hex() or 'none'})")
        return self.zeros if zeros_id else None

    def _file(self, px: Pixels, coded: Pixels, payloads: tuple[bytes, ...], extra: bytes = b"",
              step: float = 0.0, scale: float = 1.0) -> AecFile:
        """The file of photo ``px`` whose stages and detail layer code ``coded`` (``px``
        itself, or ``px`` scaled down by a rung ``scale`` times smaller)."""
        alpha = alpha_plane.encode(px.alpha) if px.alpha is not None else b""
        filt, upfilt = self.weights.postfilter, self.weights.upfilter
        intervals = filt.intervals if filt and extra else b""
        scaled = coded is not px
        up_class = upfilt.class_for(len(payloads), step, scale) if upfilt and scaled else None
        # ``extra`` is detail.encode's, tilted, with adaptive steps and near-frequency
        # contexts: a version 10 file carries it packed (11 with the card's zero tables)
        return AecFile(px.mode, self.weights.model_id, px.width, px.height, payloads, alpha,
                       aec_format.pack_detail(extra, aec_format.NEAR_DETAIL) if extra else b"",
                       detail_version=aec_format.NEAR_DETAIL if extra else detail.TILTED_VERSION,
                       filter_id=filt.filter_id if filt else b"",
                       filter_class=filt.class_for(len(payloads), step) if filt else 0,
                       intervals=intervals,
                       coded_width=coded.width if scaled else 0, coded_height=coded.height if scaled else 0,
                       upfilter_id=upfilt.filter_id if up_class is not None else b"", upfilter_class=up_class or 0,
                       adaptive=detail.ADAPTIVE.to_bytes() if extra else b"", zeros_id=self.zeros_id)

    def _fit(self, px: Pixels, indices: np.ndarray | None, ladder: tuple, budget: int) -> AecFile:
        """The best file within ``budget`` bytes from one search per coded size over all
        the stages the ladder uses (``ratecontrol.fit``; each candidate's stages are a
        prefix, but for a ``deeper_base``, searched once more with a stage more as
        ``encode`` does). ``indices``: the full-size search, when the ladder has one."""
        top = max(rung.stages for rung in ladder)
        searches, bases, deeper = {}, {}, {}

        def search(scale: float) -> tuple[Pixels, np.ndarray, tuple[bytes, ...]]:
            coded = self._coded_pixels(px, scale)
            key = (coded.height, coded.width)
            if key not in searches:
                reuse = coded is px and indices is not None and indices.shape[0] >= top
                found = indices if reuse else self._indices_batched([coded], top, 1)[0]
                searches[key] = coded, found, self._payloads(found)
            return searches[key]

        def build(n_stages: int, step: float, scale: float) -> AecFile:
            coded, found, payloads = search(scale)
            chosen, stages, key = found[:n_stages], payloads[:n_stages], (coded.height, coded.width, n_stages)
            if not step:
                return self._file(px, coded, stages, scale=scale)
            if self._wants_deeper_base(coded, stages, step):       # as ``encode`` would
                if key not in deeper:
                    deeper[key] = self._deeper_stages(coded, n_stages)
                (chosen, stages), key = deeper[key], ("deeper", *key)
            if key not in bases:
                bases[key] = self._encoder_bases([chosen], coded.height, coded.width)[0]
            return self._file(px, coded, stages,
                              detail.encode(coded.rgb, bases[key], step, detail.activity(chosen),
                                            adaptive=detail.ADAPTIVE, near=True), step, scale)

        return ratecontrol.fit(ladder, budget, build, lambda f: len(f.to_bytes()), detail.MAX_STEP)

    def load(self, image) -> Pixels:
        """The pixels of an image the codec accepts (path, PIL image, array), within the
        limit (a file's size is checked from its header, before its pixels are decoded)."""
        return load_pixels(image, pixel_limit(self.max_pixels))

    def _check_quality(self, quality, budgeted: bool) -> int:
        if quality is None:
            quality = max(self.qualities) if budgeted else DEFAULT_QUALITY
        if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) \
                or quality not in self.qualities:
            raise ValueError(f"quality must be one of {list(self.qualities)}, not {quality!r}")
        return int(quality)

    def _batched(self, items: list, cells, run, batch: int) -> list:
        """``run`` on groups of up to ``batch`` items that share a key, results in input
        order. ``cells(item)`` is the item's latent grid (h, w), then anything else that
        must match within a batch (decoding: stage count and pixel size); items larger
        than one tile go alone (they are tiled, and fill a device anyway)."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive integer, not {batch!r}")
        results, groups = [None] * len(items), {}
        for i, item in enumerate(items):
            key = cells(item)
            alone = max(key[:2]) > self.tile
            groups.setdefault((key, i if alone else -1), []).append(i)
        for members in groups.values():
            for k in range(0, len(members), batch):
                part = members[k:k + batch]
                for i, r in zip(part, run([items[i] for i in part])):
                    results[i] = r
        return results

    def _cells(self, height: int, width: int) -> tuple[int, int]:
        return self.model.cells(height, width)

    @staticmethod
    def _budget(max_bytes, bpp, pixels: int) -> int:
        if max_bytes is not None and bpp is not None:
            raise ValueError("give max_bytes or bpp, not both")
        if bpp is not None:
            if isinstance(bpp, bool) or not isinstance(bpp, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(bpp) or not bpp > 0:
                raise ValueError(f"bpp must be a positive finite number, not {bpp!r}")
            return max(1, int(bpp * pixels / 8))
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive integer, not {max_bytes!r}")
        return int(max_bytes)

    def _indices(self, pixels: list[Pixels], n_stages: int) -> list[np.ndarray]:
        """Images of one size -> per image indices [S, G, h, w]."""
        # uint8 all the way to the tiles: the model pads and converts each tile itself
        planes = [torch.from_numpy(np.require(px.rgb, requirements="W")).permute(2, 0, 1) for px in pixels]
        x = (planes[0][None] if len(planes) == 1 else torch.stack(planes)).to(self.device)   # one image: a view
        idx = self.model.compress(x, n_stages, self.tile).cpu().numpy()       # [S, n, G, h, w]
        return [idx[:, i] for i in range(idx.shape[1])]

    # -- decode ----------------------------------------------------------------------
    def parse(self, data: bytes) -> AecFile:
        """The file's container, checked against the model that wrote it."""
        decoder = self._decoder_of(data)
        return self._parse_own(data) if decoder is self else decoder.parse(data)

    def decoder_for(self, model_id: bytes) -> "Codec":
        """This codec, or the installed model ``model_id`` with this codec's settings:
        the one that decodes that model's files."""
        if model_id == self.weights.model_id:
            return self
        if model_id not in self._other_models:
            folder = installed_models(self.weights.folder).get(model_id)
            if folder is None:
                raise FormatError(f"file was written by model {model_id.hex()}, which is not installed "
                                  f"(the loaded weights are model {self.model_id}); decode it with "
                                  f"the weights that wrote it")
            self._other_models[model_id] = Codec(folder, self.device, self.max_pixels, self.tile, self.exact)
        return self._other_models[model_id]

    def _decoder_of(self, data: bytes) -> "Codec":
        return self.decoder_for(aec_format.parse_header(data[:aec_format.HEADER_SIZE],
                                                        pixel_limit(self.max_pixels)).model_id)

    def _parse_own(self, data: bytes) -> AecFile:
        f = aec_format.parse(data, pixel_limit(self.max_pixels))
        if f.stage_count > self.weights.config.stages:
            raise FormatError(f"file holds {f.stage_count} stages, the model has {self.weights.config.stages}")
        positions = np.prod(self.model.cells(*f.coded_size))
        self._zero_tables(f.zeros_id)                   # a file naming other tables fails here
        min_bits = self._min_bits[f.zeros_id]
        for s, payload in enumerate(f.stages):
            # The coder keeps up to 64 bits in flight, and constriction's fixed-point
            # probabilities differ from the tables by far less than 1%: a payload below
            # this bound cannot hold the declared image, so refuse it before decoding.
            if 8 * len(payload) + 64 < 0.99 * positions * min_bits[s]:
                raise FormatError(f"stage {s + 1} payload ({len(payload)} bytes) is too short for a "
                                  f"{f.width}x{f.height} image")
        return f

    def decode(self, data: bytes) -> Image.Image:
        px = self.decode_pixels(data)
        return to_pil(px.rgb, px.mode, px.alpha)

    def decode_pixels(self, data: bytes) -> Pixels:
        return self.decode_pixels_many([data])[0]

    def decode_many(self, files: list[bytes], batch: int = 8) -> list[Image.Image]:
        """``decode`` for each file, with the decoder run on up to ``batch`` images of the
        same size and quality at once."""
        return [to_pil(px.rgb, px.mode, px.alpha) for px in self.decode_pixels_many(files, batch)]

    def decode_pixels_many(self, files: list[bytes], batch: int = 8) -> list[Pixels]:
        decoders = [self._decoder_of(data) for data in files]
        out: list[Pixels | None] = [None] * len(files)
        for decoder in dict.fromkeys(decoders):           # each model once, in order of first use
            picks = [i for i, d in enumerate(decoders) if d is decoder]
            mine = [files[i] for i in picks]
            decoded = self._decode_own(mine, batch) if decoder is self else decoder.decode_pixels_many(mine, batch)
            for i, px in zip(picks, decoded):
                out[i] = px
        return out

    def _decode_own(self, files: list[bytes], batch: int) -> list[Pixels]:
        coded = [self._entropy_decode(data) for data in files]
        rgbs = self._batched(coded, lambda c: self._base_key(c[1], *c[0].coded_size),
                             lambda part: self._synthesize([c[1] for c in part], *part[0][0].coded_size,
                                                           self.exact), batch)
        out = []
        for i, rgb in enumerate(rgbs):
            f, idx, alpha = coded[i]
            coded[i] = None        # the indices are done with: free them before the detail levels
            levels = base = None
            if f.detail:
                cells, idx = detail.activity(idx), None
                try:
                    payload, layout = f.unpacked_detail()
                    levels = detail.decode_levels(payload, f.coded_size, cells, layout)
                except detail.DetailError as exc:
                    raise FormatError(str(exc)) from None
                if f.adaptive:           # version 9: steps from the base image, before it is overwritten
                    levels = levels.adapted(detail.Adaptive.from_bytes(f.adaptive), rgb)
                base = rgb.copy() if f.intervals else None      # versions 5-9 hold the filter's output to it
                rgb = detail.reconstruct(levels, rgb, out=rgb)
            rgb = self._postfilter(f.filter_id, f.filter_class, rgb, "post-filter")
            if f.intervals:
                rgb = detail.constrain(rgb, base, levels, detail.Intervals.from_bytes(f.intervals), out=rgb)
            if f.scaled:
                rgb = self._postfilter(f.upfilter_id, f.upfilter_class, resample.upscale(rgb, f.height, f.width),
                                       "filter after scaling up")
            out.append(Pixels(rgb, f.mode, alpha))
        return out

    def _postfilter(self, filter_id: bytes, cls: int, rgb: np.ndarray, what: str) -> np.ndarray:
        """The decoded image through a filter the file names (none: ``filter_id`` empty);
        ``what`` names the filter's role in errors."""
        if not filter_id:
            return rgb
        filt = self.weights.postfilter_for(filter_id)
        if filt is None:
            raise FormatError(f"the file needs {what} {filter_id.hex()}, which model "
                              f"{self.model_id} does not have")
        if cls >= filt.classes:
            raise FormatError(f"{what} class {cls} is outside 0..{filt.classes - 1}")
        return filt.apply(rgb, cls, self.device)

    def _base_key(self, indices: np.ndarray, height: int, width: int) -> tuple:
        """What must match for images to share a decoder batch: latent grid, stages, pixel size."""
        return (*indices.shape[2:], indices.shape[0], height, width)

    def _entropy_decode(self, data: bytes) -> tuple[AecFile, np.ndarray, np.ndarray | None]:
        """Everything but the networks: (header, indices [S, G, h, w], alpha plane)."""
        f = self._parse_own(data)
        indices = self.entropy_decode(f.stages, *f.coded_size, f.zeros_id)
        alpha = alpha_plane.decode(f.alpha, f.width, f.height) if f.has_alpha else None
        return f, indices, alpha

    def _synthesize(self, indices: list[np.ndarray], height: int, width: int,
                    exact: bool = True) -> list[np.ndarray]:
        """Indices [S, G, h, w] of images of one size and stage count -> uint8 RGB base images."""
        stacked = indices[0][:, None] if len(indices) == 1 else np.stack(indices, axis=1)   # one image: a view
        idx = torch.from_numpy(stacked).to(self.device)
        if not exact:
            with torch.no_grad():
                return list(self.model.decompress(idx, height, width, self.tile))
        with exact_context(self.device):
            return list(self.model.decompress(idx, height, width, self.tile, self.synthesis))
