"""The .aec container: parse and write. Knows nothing of torch or images.

Layout (all integers big-endian; see docs/FORMAT.md):

    magic      4   b"\\x89AEC"
    version    1   1; 2 or 3 when the file has a detail layer (3: with a frequency tilt);
                   4 when it names a post-filter (its detail layer, if any, as in 3);
                   5 when the filter's output is then held to the detail layer's intervals;
                   6 as 5, with the detail layer's class bytes packed (``pack_detail``);
                   7 when the image is coded at a reduced size (every field below but the
                   last two present); 8 as 7, naming a filter to run after scaling up;
                   9 when the detail layer's steps adapt to each block (every field below);
                   10 as 9, its detail layer coded with near-frequency contexts;
                   11 when its stages are coded with zero tables (every field below; a
                   detail layer, if any, as in 10)
    mode       1   0 = L, 1 = RGB, 2 = LA, 3 = RGBA
    model_id   8   first 8 bytes of the sha256 of the weights that wrote it
    width      4
    height     4
    stages     1   number of stage payloads that follow (the quality)
    alpha_len  4   length of the deflate-compressed alpha plane (0 without alpha)
    detail_len 4   versions 2-11 only: length of the detail layer (aecodec/detail.py;
                   0 in versions 4, 7 and 8: none)
    filter_id  8   versions 4-11 only: first 8 bytes of the sha256 of the post-filter
                   (versions 7-11: zeros for none)
    filter_cls 1   versions 4-11 only: the post-filter's class (aecodec/postfilter.py)
    intervals  3   versions 5-11 only: what the post-filter's output is held to (detail.Intervals;
                   in versions 7-11 zeros unless there are both a filter and a detail layer)
    coded_w    4   versions 7-11 only: the coded image's size, which the decoder scales up to
    coded_h    4     width x height (aecodec/resample.py); at most it in each, and not both equal
                     (versions 9-11: both 0 for an image coded at its own size)
    up_id      8   versions 8-11 only: first 8 bytes of the sha256 of the filter run after scaling
                   up (versions 9-11: zeros for none)
    up_cls     1   versions 8-11 only: that filter's class
    adaptive   2   versions 9-11 only: how the detail layer's steps adapt (detail.Adaptive;
                   version 11: zeros without a detail layer)
    zeros_id   8   version 11 only: first 8 bytes of the sha256 of the zero tables its stages
                   are coded with (aecodec/entropy/context.py), never all zero
    stage_len  4 * stages
    payloads   sum(stage_len)
    detail     detail_len
    alpha      alpha_len
    crc32      4   over every byte before it

The header is checked, and every declared length checked against the real size,
before anything is allocated or decoded.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace

MAGIC = b"\x89AEC"
# Files without a detail layer are written as version 1, byte for byte what earlier
# releases wrote, so those releases still read them; version 2 adds the detail layer,
# version 3 a detail layer whose steps rise with frequency (detail.Tilt), and version 4
# a post-filter (postfilter.py) after the version 3 decoding, version 5 the filter's
# output held to the intervals the detail layer's levels allow (detail.Intervals), and
# version 6 is version 5 with the detail layer's head packed (``pack_detail``).
# Version 7 codes the image at a reduced size, which the decoder scales up: it has
# every field of version 6 (a zero filter id for none) plus the coded size, so that
# dropping the filter or the detail layer keeps it version 7. Version 8 is version 7
# naming a second filter, which runs on the scaled-up image (the blur of scaling up is
# what the first one, at the coded size, cannot undo; TRAINING_LOG Part 24); dropping
# it gives version 7. Version 9 has every field of version 8 (zeros for what the file
# lacks, a coded size of 0 x 0 for none) and the 2 bytes of a detail layer whose steps
# adapt to each block (detail.Adaptive; TRAINING_LOG Part 26): it has a detail layer,
# packed, and dropping that layer gives version 1, 7 or 8. Its intervals may be zeros
# (none) with a post-filter, for a card whose filter gives none. Version 10 is version 9
# whose detail layer codes its levels with near-frequency contexts (detail.NEAR_EDGES;
# TRAINING_LOG Part 27): its head has 6 more offsets. Version 11 has every field of
# version 10 and names the zero tables its stages are coded with (entropy/context.py;
# TRAINING_LOG Part 28), with or without a detail layer: dropping the detail layer or
# stages keeps it version 11. Earlier releases cannot read it, whatever it holds.
FORMAT_VERSION = 11
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
DETAIL_VERSIONS = (2, 3)           # the layouts of a detail payload in versions 2-5
FILTER_VERSION = 4
INTERVALS_VERSION = 5
PACKED_VERSION = 6
PACKED_DETAIL = 6                  # ``AecFile.detail_version`` of a packed detail layer
SCALED_VERSION = 7
UPFILTER_VERSION = 8
ADAPTIVE_VERSION = 9
NEAR_VERSION = 10
NEAR_DETAIL = 10                   # ``AecFile.detail_version`` of a packed layer with near-frequency contexts
ZEROS_VERSION = 11
ADAPTIVE_VERSIONS = (ADAPTIVE_VERSION, NEAR_VERSION)     # every field, the adaptive bytes included
SCALED_VERSIONS = (SCALED_VERSION, UPFILTER_VERSION)
FULL_VERSIONS = (*SCALED_VERSIONS, *ADAPTIVE_VERSIONS, ZEROS_VERSION)   # every field up to the filter after scaling up
PACKED_LAYOUTS = (PACKED_DETAIL, NEAR_DETAIL)
MODES = ("L", "RGB", "LA", "RGBA")
_FIXED = struct.Struct(">4sBB8sIIBI")
_DETAIL_LEN = struct.Struct(">I")
_FILTER = struct.Struct(">8sB")
_INTERVALS = struct.Struct(">3s")
_CODED = struct.Struct(">II")
_ADAPTIVE = struct.Struct(">2s")
_ZEROS = struct.Struct(">8s")
_NO_ADAPTIVE = bytes(2)
_NO_FILTER = bytes(8)
_NO_INTERVALS = bytes(3)
HEADER_SIZE = _FIXED.size           # 27 bytes before the stage table (version 1)
MAX_DIMENSION = 1 << 16             # per side; the pixel limit is the caller's


class FormatError(ValueError):
    """The data is not a valid .aec file (or not one this version can read)."""


@dataclass(frozen=True)
class AecFile:
    mode: str
    model_id: bytes
    width: int
    height: int
    stages: tuple[bytes, ...]
    alpha: bytes = b""
    detail: bytes = b""
    detail_version: int = 3      # the layout of ``detail`` (the file's version without a filter)
    filter_id: bytes = b""       # 8 bytes: the post-filter to run after decoding (version 4)
    filter_class: int = 0
    intervals: bytes = b""       # 3 bytes: what the filter's output is held to (version 5)
    coded_width: int = 0         # versions 7-8: the size the image is coded at (0: width x height)
    coded_height: int = 0
    upfilter_id: bytes = b""     # 8 bytes: the filter to run after scaling up (version 8)
    upfilter_class: int = 0
    adaptive: bytes = b""        # 2 bytes: how the detail layer's steps adapt to each block (versions 9-11)
    zeros_id: bytes = b""        # 8 bytes: the zero tables the stages are coded with (version 11)

    @property
    def stage_count(self) -> int:
        return len(self.stages)

    @property
    def scaled(self) -> bool:
        return bool(self.coded_width or self.coded_height)

    @property
    def coded_size(self) -> tuple[int, int]:
        """(height, width) of the image the stages and the detail layer code."""
        return (self.coded_height, self.coded_width) if self.scaled else (self.height, self.width)

    @property
    def version(self) -> int:
        if self.zeros_id:
            return ZEROS_VERSION
        if self.adaptive:
            return NEAR_VERSION if self.detail_version == NEAR_DETAIL else ADAPTIVE_VERSION
        if self.scaled:
            return UPFILTER_VERSION if self.upfilter_id else SCALED_VERSION
        if self.intervals:
            return PACKED_VERSION if self.detail_version == PACKED_DETAIL else INTERVALS_VERSION
        if self.filter_id:
            return FILTER_VERSION
        return self.detail_version if self.detail else 1

    @property
    def has_alpha(self) -> bool:
        return self.mode in ("LA", "RGBA")

    def to_bytes(self) -> bytes:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}")
        if not (1 <= len(self.stages) <= 255):
            raise ValueError("a file holds 1 to 255 stages")
        if len(self.model_id) != 8:
            raise ValueError("model id must be 8 bytes")
        if not (1 <= self.width <= MAX_DIMENSION and 1 <= self.height <= MAX_DIMENSION):
            raise ValueError(f"image size {self.width}x{self.height} is outside 1..{MAX_DIMENSION}")
        if bool(self.alpha) != self.has_alpha:
            raise ValueError("alpha data must be present exactly for LA and RGBA")
        if self.upfilter_class and not self.upfilter_id:
            raise ValueError("a filter class after scaling up, but no such filter")
        if self.filter_class and not self.filter_id:
            raise ValueError("a post-filter class, but no post-filter")
        if self.zeros_id:
            if len(self.zeros_id) != 8 or self.zeros_id == _NO_FILTER:
                raise ValueError("the zero tables' id is 8 bytes, not all zero")
            if self.detail and self.detail_version != NEAR_DETAIL:
                raise ValueError("a version 11 file's detail layer has near-frequency contexts, packed")
        if self.adaptive:
            if len(self.adaptive) != 2 or not self.detail:
                raise ValueError("adaptive quantization is 2 bytes, in a file with a detail layer")
            if self.detail_version not in PACKED_LAYOUTS:
                raise ValueError("a version 9 or 10 file's detail layer is packed (``pack_detail``)")
            if self.filter_id == _NO_FILTER:
                raise ValueError("a post-filter id of zeros means none in versions 9-10")
        elif self.detail and self.detail_version == NEAR_DETAIL:
            raise ValueError("a detail layer with near-frequency contexts is in version 10-11 files only, "
                             "which have adaptive steps")
        if self.scaled:
            self._check_scaled()
        elif self.upfilter_id:
            raise ValueError("a filter after scaling up is in files coded at a reduced size only")
        elif self.detail_version not in DETAIL_VERSIONS + PACKED_LAYOUTS:
            raise ValueError(f"a detail layer's layout is that of format version 2, 3, 6 or 10, "
                             f"not {self.detail_version!r}")
        if self.detail and self.detail_version in PACKED_LAYOUTS:
            if not self.intervals and not self.scaled and not self.adaptive:
                raise ValueError("a packed detail layer is in version 6 files only, which hold a post-filter "
                                 "to intervals")
            unpack_detail(self.detail, self.detail_version)      # never write what ``parse`` would refuse
        if self.filter_id:
            if len(self.filter_id) != 8:
                raise ValueError("post-filter id must be 8 bytes")
            if self.detail and self.detail_version == 2:
                raise ValueError("a version 4-6 file's detail layer has the version 3 layout")
            _check_class(self.filter_class, "post-filter")
        if self.intervals and (len(self.intervals) != 3 or not self.filter_id or not self.detail):
            raise ValueError("intervals are 3 bytes, in a file with a post-filter and a detail layer")
        full = self.version in FULL_VERSIONS
        head = _FIXED.pack(MAGIC, self.version, MODES.index(self.mode), self.model_id,
                           self.width, self.height, len(self.stages), len(self.alpha))
        if self.detail or self.filter_id or full:
            head += _DETAIL_LEN.pack(len(self.detail))
        if self.filter_id or full:
            head += _FILTER.pack(self.filter_id or _NO_FILTER, self.filter_class)
        if self.intervals or full:
            head += _INTERVALS.pack(self.intervals or _NO_INTERVALS)
        if full:
            head += _CODED.pack(self.coded_width, self.coded_height)
        if self.upfilter_id or self.adaptive or self.zeros_id:
            head += _FILTER.pack(self.upfilter_id or _NO_FILTER, self.upfilter_class)
        if self.adaptive or self.zeros_id:
            head += _ADAPTIVE.pack(self.adaptive or _NO_ADAPTIVE)
        if self.zeros_id:
            head += _ZEROS.pack(self.zeros_id)
        table = struct.pack(f">{len(self.stages)}I", *(len(s) for s in self.stages))
        body = head + table + b"".join(self.stages) + self.detail + self.alpha
        return body + struct.pack(">I", zlib.crc32(body))

    def _check_scaled(self) -> None:
        check_coded_size(self.coded_width, self.coded_height, self.width, self.height, ValueError)
        if self.detail and self.detail_version not in PACKED_LAYOUTS:
            raise ValueError("a version 7 or 8 file's detail layer is packed (``pack_detail``)")
        if self.filter_id == _NO_FILTER:
            raise ValueError("a post-filter id of zeros means none in versions 7-8")
        if self.upfilter_id:
            if len(self.upfilter_id) != 8 or self.upfilter_id == _NO_FILTER:
                raise ValueError("the id of the filter after scaling up is 8 bytes, not all zero")
            _check_class(self.upfilter_class, "the filter after scaling up's")

    @property
    def header_size(self) -> int:
        """Bytes before the stage table."""
        if self.version in FULL_VERSIONS:
            extended = self.upfilter_id or self.adaptive or self.zeros_id
            return HEADER_SIZE + _DETAIL_LEN.size + _FILTER.size + _INTERVALS.size + _CODED.size \
                + (_FILTER.size if extended else 0) + (_ADAPTIVE.size if self.adaptive or self.zeros_id else 0) \
                + (_ZEROS.size if self.zeros_id else 0)
        return (HEADER_SIZE + (_DETAIL_LEN.size if self.detail or self.filter_id else 0)
                + (_FILTER.size if self.filter_id else 0) + (_INTERVALS.size if self.intervals else 0))

    def with_stages(self, n: int) -> "AecFile":
        """The same file keeping only the first ``n`` stages (a valid, coarser file).

        The detail layer is the residual of the image decoded from all stages, so it
        is kept only when every stage is; so is the post-filter, whose class was chosen
        for the whole file."""
        if not (1 <= n <= len(self.stages)):
            raise ValueError(f"can keep 1 to {len(self.stages)} stages, not {n}")
        if n == len(self.stages):
            return self
        return replace(self, stages=self.stages[:n]).without_detail()

    def without_detail(self) -> "AecFile":
        """The same file without its detail layer (and so without the post-filter and
        the adaptive steps, which belong to it)."""
        return replace(self, detail=b"", adaptive=b"").without_filter()

    def without_filter(self) -> "AecFile":
        """The same file decoded without the post-filter (and so without its intervals,
        and without the filter after scaling up, trained on the post-filter's output; a
        packed detail layer is unpacked, as only versions 6-8 hold one)."""
        if self.scaled or self.adaptive:     # the detail layer stays packed; without one, the default
            return replace(self.without_upfilter(), filter_id=b"", filter_class=0, intervals=b"",
                           detail_version=self.detail_version if self.detail else AecFile.detail_version)
        payload, layout = self.unpacked_detail()
        return replace(self, filter_id=b"", filter_class=0, intervals=b"", detail=payload, detail_version=layout)

    def without_upfilter(self) -> "AecFile":
        """The same file decoded without the filter after scaling up (version 7)."""
        return replace(self, upfilter_id=b"", upfilter_class=0)

    def unpacked_detail(self) -> tuple[bytes, int]:
        """(detail layer, layout): in the layout of format version 2, 3 or 10, which
        ``detail.decode_levels`` reads; a packed one unpacked."""
        if not self.detail:
            return b"", AecFile.detail_version
        if self.detail_version in PACKED_LAYOUTS:
            layout = NEAR_VERSION if self.detail_version == NEAR_DETAIL else 3
            return unpack_detail(self.detail, self.detail_version), layout
        return self.detail, self.detail_version


# A detail layer in the version 3 layout starts with its step (2 bytes), tilt (3) and
# context offsets (15), then one byte per class (192, 0 for a class with no level
# coded: most of them), then the range coder's words. Version 6 packs the class bytes:
# a bitmap of the coded classes (24 bytes, class j at bit 7 - j % 8 of byte j // 8),
# then the coded classes' bytes in class order. Both forms hold the same information.
# Version 10's layout has 6 more offsets before the class bytes.
_DETAIL_FIXED = {PACKED_DETAIL: 20, NEAR_DETAIL: 26}
_DETAIL_CLASSES = 192
_BITMAP = _DETAIL_CLASSES // 8


def pack_detail(payload: bytes, packed_layout: int = PACKED_DETAIL) -> bytes:
    """A version 3 detail layer with its class bytes packed (version 6), or with
    ``packed_layout`` NEAR_DETAIL a version 10 one."""
    fixed = _DETAIL_FIXED[packed_layout]
    head = fixed + _DETAIL_CLASSES
    if len(payload) < head:
        raise ValueError(f"a version {3 if packed_layout == PACKED_DETAIL else NEAR_VERSION} detail layer "
                         f"has at least {head} bytes, not {len(payload)}")
    classes = payload[fixed:head]
    bits = [int(b != 0) for b in classes]
    bitmap = bytes(sum(bit << (7 - k) for k, bit in enumerate(bits[i:i + 8])) for i in range(0, len(bits), 8))
    return payload[:fixed] + bitmap + bytes(b for b in classes if b) + payload[head:]


def unpack_detail(packed: bytes, packed_layout: int = PACKED_DETAIL) -> bytes:
    """``pack_detail``'s inverse; raises FormatError where ``packed`` is not its output."""
    fixed = _DETAIL_FIXED[packed_layout]
    start = fixed + _BITMAP
    if len(packed) < start:
        raise FormatError(f"packed detail layer of {len(packed)} bytes is shorter than its {start}-byte head")
    coded = [j for j in range(_DETAIL_CLASSES) if packed[fixed + j // 8] >> (7 - j % 8) & 1]
    end = start + len(coded)
    if len(packed) < end:
        raise FormatError(f"packed detail layer of {len(packed)} bytes ends inside its {len(coded)} class bytes")
    values = packed[start:end]
    if 0 in values:
        raise FormatError("packed detail layer marks a class as coded whose byte is 0")
    classes = bytearray(_DETAIL_CLASSES)
    for j, b in zip(coded, values):
        classes[j] = b
    return packed[:fixed] + bytes(classes) + packed[end:]


def fit(f: AecFile, max_bytes: int) -> AecFile:
    """The whole file if it fits in ``max_bytes``, else the longest prefix of stages
    (without the detail layer) that does."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive integer, not {max_bytes!r}")
    if f.detail or f.filter_id or f.upfilter_id:
        if len(f.to_bytes()) <= max_bytes:
            return f
        f = f.without_detail()
    fixed = f.header_size + len(f.alpha) + 4
    total = fixed
    keep = 0
    for payload in f.stages:
        total += 4 + len(payload)
        if total > max_bytes:
            break
        keep += 1
    if keep == 0:
        raise ValueError(f"cannot fit the image in {max_bytes} bytes: "
                         f"the first stage alone makes a {fixed + 4 + len(f.stages[0])}-byte file")
    return f.with_stages(keep)


def looks_like_aec(data: bytes) -> bool:
    return data[:4] == MAGIC


@dataclass(frozen=True)
class Header:
    """What the fixed header says, before the payloads are read or verified."""
    version: int
    mode: str
    model_id: bytes
    width: int
    height: int
    stage_count: int


def parse_header(prefix: bytes, max_pixels: int | None = None) -> Header:
    """Check and read the first HEADER_SIZE bytes (enough to identify a file and its
    size without reading, or trusting, the rest; ``parse`` verifies the whole)."""
    if len(prefix) == 0:
        raise FormatError("empty input")
    if prefix[:4] != MAGIC:
        if len(prefix) < 4 and MAGIC.startswith(prefix):
            raise FormatError(f"truncated .aec file ({len(prefix)} bytes)")
        raise FormatError("not an .aec file (wrong magic bytes)")
    if len(prefix) < HEADER_SIZE:
        raise FormatError(f"truncated .aec file ({len(prefix)} bytes, header needs {HEADER_SIZE + 4})")
    _, version, mode, model_id, width, height, n_stages, _ = _FIXED.unpack_from(prefix)
    if version not in READABLE_VERSIONS:
        raise FormatError(f"unsupported .aec format version {version} "
                          f"(this build reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    if mode >= len(MODES):
        raise FormatError(f"unknown colour mode {mode}")
    if not (1 <= width <= MAX_DIMENSION and 1 <= height <= MAX_DIMENSION):
        raise FormatError(f"image size {width}x{height} is outside 1..{MAX_DIMENSION}")
    if max_pixels is not None and width * height > max_pixels:
        raise FormatError(f"image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels")
    if n_stages == 0:
        raise FormatError("file holds no stages")
    return Header(version, MODES[mode], model_id, width, height, n_stages)


def parse(data: bytes, max_pixels: int | None = None) -> AecFile:
    """Parse and verify ``data``. Raises FormatError with a one-line reason."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FormatError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if data[:4] == MAGIC and len(data) < HEADER_SIZE + 4:
        raise FormatError(f"truncated .aec file ({len(data)} bytes, header needs {HEADER_SIZE + 4})")
    header = parse_header(data[:HEADER_SIZE], max_pixels)
    version, n_stages, width, height = header.version, header.stage_count, header.width, header.height
    (alpha_len,) = struct.unpack_from(">I", data, HEADER_SIZE - 4)
    head_end, detail_len, filter_id, filter_class, intervals = HEADER_SIZE, 0, b"", 0, b""
    coded_width = coded_height = upfilter_class = 0
    upfilter_id = adaptive = zeros_id = b""
    if version != 1:
        head_end += _DETAIL_LEN.size + (_FILTER.size if version >= FILTER_VERSION else 0) \
            + (_INTERVALS.size if version >= INTERVALS_VERSION else 0) \
            + (_CODED.size if version in FULL_VERSIONS else 0) \
            + (_FILTER.size if version >= UPFILTER_VERSION else 0) \
            + (_ADAPTIVE.size if version in (*ADAPTIVE_VERSIONS, ZEROS_VERSION) else 0) \
            + (_ZEROS.size if version == ZEROS_VERSION else 0)
        if len(data) < head_end + 4:
            raise FormatError(f"truncated .aec file ({len(data)} bytes, header needs {head_end + 4})")
        (detail_len,) = _DETAIL_LEN.unpack_from(data, HEADER_SIZE)
        if detail_len == 0 and version in DETAIL_VERSIONS:
            raise FormatError(f"version {version} file with an empty detail layer")
        if detail_len == 0 and version in (INTERVALS_VERSION, PACKED_VERSION):
            raise FormatError(f"version {version} file without a detail layer to hold the filter to")
        if detail_len == 0 and version in ADAPTIVE_VERSIONS:
            raise FormatError(f"version {version} file without a detail layer for its adaptive steps")
        if version >= FILTER_VERSION:
            filter_id, filter_class = _FILTER.unpack_from(data, HEADER_SIZE + _DETAIL_LEN.size)
        if version >= INTERVALS_VERSION:
            (intervals,) = _INTERVALS.unpack_from(data, HEADER_SIZE + _DETAIL_LEN.size + _FILTER.size)
        if version in FULL_VERSIONS:
            coded_at = HEADER_SIZE + _DETAIL_LEN.size + _FILTER.size + _INTERVALS.size
            coded_width, coded_height = _CODED.unpack_from(data, coded_at)
            if version in SCALED_VERSIONS or (coded_width, coded_height) != (0, 0):
                check_coded_size(coded_width, coded_height, width, height, FormatError)
            if filter_id == _NO_FILTER:
                if filter_class:
                    raise FormatError(f"version {version} file names a post-filter class but no post-filter")
                filter_id = b""
            if version in SCALED_VERSIONS and (intervals != _NO_INTERVALS) != bool(filter_id and detail_len):
                raise FormatError(f"version {version} file's intervals must be set exactly when it has a "
                                  "post-filter and a detail layer")
            if intervals != _NO_INTERVALS and not filter_id:     # version 9: a filter may go unheld
                raise FormatError(f"version {version} file has intervals but no post-filter")
            if intervals == _NO_INTERVALS:
                intervals = b""
        if version >= UPFILTER_VERSION:
            upfilter_id, upfilter_class = _FILTER.unpack_from(data, coded_at + _CODED.size)
            if upfilter_id == _NO_FILTER and version == UPFILTER_VERSION:
                raise FormatError("version 8 file names no filter after scaling up")
            if upfilter_id == _NO_FILTER:
                if upfilter_class:
                    raise FormatError(f"version {version} file names a class of filter after scaling up "
                                      "but no such filter")
                upfilter_id = b""
            elif not coded_width:
                raise FormatError(f"version {version} file names a filter after scaling up but is coded "
                                  "at its own size")
        if version in (*ADAPTIVE_VERSIONS, ZEROS_VERSION):
            (adaptive,) = _ADAPTIVE.unpack_from(data, coded_at + _CODED.size + _FILTER.size)
        if version == ZEROS_VERSION:
            (zeros_id,) = _ZEROS.unpack_from(data, coded_at + _CODED.size + _FILTER.size + _ADAPTIVE.size)
            if zeros_id == _NO_FILTER:
                raise FormatError("version 11 file names no zero tables")
            if not detail_len:
                if adaptive != _NO_ADAPTIVE:
                    raise FormatError("version 11 file has adaptive steps but no detail layer")
                adaptive = b""
    table_end = head_end + 4 * n_stages
    if len(data) < table_end + 4:
        raise FormatError("truncated .aec file (stage table incomplete)")
    lengths = struct.unpack_from(f">{n_stages}I", data, head_end)
    expected = table_end + sum(lengths) + detail_len + alpha_len + 4
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "trailing data after"
        raise FormatError(f"{what} .aec file: declared {expected} bytes, got {len(data)}")
    (crc,) = struct.unpack_from(">I", data, len(data) - 4)
    if zlib.crc32(data[:-4]) != crc:
        raise FormatError("checksum mismatch: the file is corrupted")
    if (alpha_len > 0) != (header.mode in ("LA", "RGBA")):
        raise FormatError("alpha data does not match the colour mode")
    stages, pos = [], table_end
    for n in lengths:
        stages.append(data[pos:pos + n])
        pos += n
    detail = data[pos:pos + detail_len]
    pos += detail_len
    # Without a detail layer the field keeps its default, so equal files compare equal.
    detail_version = version if detail_len and version in DETAIL_VERSIONS else AecFile.detail_version
    if version in (PACKED_VERSION, *FULL_VERSIONS) and detail_len:
        detail_version = NEAR_DETAIL if version in (NEAR_VERSION, ZEROS_VERSION) else PACKED_DETAIL
        unpack_detail(detail, detail_version)    # refuse a malformed head here, not at decoding
    return AecFile(header.mode, header.model_id, width, height, tuple(stages), data[pos:pos + alpha_len],
                   detail, detail_version, filter_id, filter_class, intervals, coded_width, coded_height,
                   upfilter_id, upfilter_class, adaptive, zeros_id)


def _check_class(cls, what: str) -> None:
    if isinstance(cls, bool) or not isinstance(cls, int) or not 0 <= cls <= 255:
        raise ValueError(f"{what} class must be a byte, not {cls!r}")


def check_coded_size(coded_width: int, coded_height: int, width: int, height: int, error=FormatError) -> None:
    """A version 7 or 8 file's coded size: 1 to the image's size on each side, smaller on one."""
    if not (1 <= coded_width <= width and 1 <= coded_height <= height) \
            or (coded_width, coded_height) == (width, height):
        raise error(f"coded size {coded_width}x{coded_height} must be within the image's "
                    f"{width}x{height} and smaller on at least one side")
