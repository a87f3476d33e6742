"""The .aec container: exact bytes, round trips, and rejection of everything else."""
import struct
import zlib
from dataclasses import replace

import pytest
from hypothesis import given, settings, strategies as st

from aecodec.format import (AecFile, FormatError, HEADER_SIZE, MAGIC, NEAR_DETAIL, PACKED_DETAIL, fit, pack_detail,
                            parse, unpack_detail)

SAMPLE = AecFile("RGB", bytes(range(8)), 3, 2, (b"\x01\x02\x03\x04", b"\xaa\xbb\xcc\xdd\xee\xff\x00\x11"))
DETAILED = AecFile("RGBA", bytes(range(8)), 3, 2, (b"\x01\x02\x03\x04",), b"\x07\x08", b"\xd0\xd1\xd2")
FILTERED = replace(DETAILED, filter_id=bytes(range(16, 24)), filter_class=7)
FILTERED_BASE = replace(SAMPLE, filter_id=bytes(range(16, 24)), filter_class=2)
HELD = replace(FILTERED, intervals=b"\x26\x0d\x1a")
# A detail layer in the version 3 layout: step, tilt, 15 offsets, 192 class bytes (three
# coded), 8 bytes of coder words; and the version 6 file that carries it packed.
CLASS_BYTES = bytes(90 if j in (0, 9, 191) else 0 for j in range(192))
LAYOUT_3 = b"\x01\x80" b"\x18\x30\x14" + bytes(range(15)) + CLASS_BYTES + b"\xc0\xc1\xc2\xc3\xc4\xc5\xc6\xc7"
PACKED = replace(HELD, detail=pack_detail(LAYOUT_3), detail_version=PACKED_DETAIL)
# Version 7: coded at 2x1, shown at 3x2; without anything else, and with everything.
SCALED = replace(SAMPLE, coded_width=2, coded_height=1)
SCALED_HELD = replace(PACKED, coded_width=3, coded_height=1)
# Version 8: version 7 naming a filter to run after scaling up.
UPFILTERED = replace(SCALED_HELD, upfilter_id=bytes(range(32, 40)), upfilter_class=4)
UPFILTERED_BASE = replace(SCALED, upfilter_id=bytes(range(32, 40)), upfilter_class=0)
# Version 9: a detail layer whose steps adapt to each block, at its own size or scaled.
ADAPTED = replace(PACKED, adaptive=b"\x0a\x3a")
ADAPTED_PLAIN = replace(ADAPTED, filter_id=b"", filter_class=0, intervals=b"")
ADAPTED_UP = replace(UPFILTERED, adaptive=b"\x0a\x3a")
# Version 10: version 9 whose detail layer (the version 10 layout: 6 more offsets) is
# coded with near-frequency contexts.
LAYOUT_10 = LAYOUT_3[:20] + bytes(range(100, 106)) + LAYOUT_3[20:]
NEAR = replace(ADAPTED, detail=pack_detail(LAYOUT_10, NEAR_DETAIL), detail_version=NEAR_DETAIL)
NEAR_PLAIN = replace(NEAR, filter_id=b"", filter_class=0, intervals=b"")
NEAR_UP = replace(ADAPTED_UP, detail=NEAR.detail, detail_version=NEAR_DETAIL)
# Version 11: every field of version 10 and the id of the zero tables its stages are
# coded with, with or without a detail layer.
ZEROS_ID = b"\x5a\x11\x22\x33\x44\x55\x66\x77"
ZEROS = replace(NEAR, zeros_id=ZEROS_ID)
ZEROS_UP = replace(NEAR_UP, zeros_id=ZEROS_ID)
ZEROS_BARE = replace(SAMPLE, zeros_id=ZEROS_ID)
ZEROS_SCALED = replace(SCALED, zeros_id=ZEROS_ID)
SAMPLES = [SAMPLE, DETAILED, FILTERED, FILTERED_BASE, HELD, PACKED, SCALED, SCALED_HELD, UPFILTERED,
           UPFILTERED_BASE, ADAPTED, ADAPTED_PLAIN, ADAPTED_UP, NEAR, NEAR_PLAIN, NEAR_UP,
           ZEROS, ZEROS_UP, ZEROS_BARE, ZEROS_SCALED]


def test_golden_bytes():
    data = SAMPLE.to_bytes()
    assert data.hex() == (
        "89414543" "01" "01" "0001020304050607" "00000003" "00000002" "02" "00000000"
        "00000004" "00000008" "01020304" "aabbccddeeff0011" + f"{zlib.crc32(data[:-4]):08x}")
    assert len(data) == HEADER_SIZE + 8 + 12 + 4


@pytest.mark.parametrize("version", [2, 3])
def test_golden_bytes_with_a_detail_layer(version):
    """Versions 2 and 3 (whose detail payloads differ, not the container): the detail
    length follows the fixed header; the detail payload sits between the stage payloads
    and the alpha plane."""
    f = replace(DETAILED, detail_version=version)
    data = f.to_bytes()
    assert data.hex() == (
        "89414543" f"0{version}" "03" "0001020304050607" "00000003" "00000002" "01" "00000002" "00000003"
        "00000004" "01020304" "d0d1d2" "0708" + f"{zlib.crc32(data[:-4]):08x}")
    assert parse(data) == f and parse(data).version == version


def test_golden_bytes_with_a_post_filter():
    """Version 4: the detail length (0 without a detail layer), then the filter id and
    class, then the stage table; the detail payload has version 3's layout."""
    data = FILTERED.to_bytes()
    assert data.hex() == (
        "89414543" "04" "03" "0001020304050607" "00000003" "00000002" "01" "00000002" "00000003"
        "1011121314151617" "07" "00000004" "01020304" "d0d1d2" "0708" + f"{zlib.crc32(data[:-4]):08x}")
    assert parse(data) == FILTERED and parse(data).detail_version == 3
    data = FILTERED_BASE.to_bytes()
    assert data.hex() == (
        "89414543" "04" "01" "0001020304050607" "00000003" "00000002" "02" "00000000" "00000000"
        "1011121314151617" "02" "00000004" "00000008" "01020304" "aabbccddeeff0011"
        + f"{zlib.crc32(data[:-4]):08x}")
    assert parse(data) == FILTERED_BASE and parse(data).version == 4


def test_golden_bytes_with_intervals():
    """Version 5: version 4's header plus the three interval bytes before the stage table."""
    data = HELD.to_bytes()
    assert data.hex() == (
        "89414543" "05" "03" "0001020304050607" "00000003" "00000002" "01" "00000002" "00000003"
        "1011121314151617" "07" "260d1a" "00000004" "01020304" "d0d1d2" "0708" + f"{zlib.crc32(data[:-4]):08x}")
    assert parse(data) == HELD and parse(data).version == 5
    assert HELD.without_filter() == DETAILED and parse(HELD.without_filter().to_bytes()).version == 3


@pytest.mark.parametrize("bad", [
    {"intervals": b"\x01\x02"},                     # not 3 bytes
    {"filter_id": b"", "filter_class": 0},          # nothing to hold without a filter
    {"detail": b""},                                # nor without a detail layer
])
def test_intervals_need_a_filter_and_a_detail_layer(bad):
    with pytest.raises(ValueError, match="intervals"):
        replace(HELD, **bad).to_bytes()


def test_a_version_5_file_without_a_detail_layer_is_refused():
    data = bytearray(HELD.to_bytes()[:-4])
    struct.pack_into(">I", data, 27, 0)               # detail length
    data = bytes(data[:-5]) + data[-2:]               # the detail payload gone
    with pytest.raises(FormatError, match="version 5 file without a detail layer"):
        parse(bytes(data) + struct.pack(">I", zlib.crc32(bytes(data))))


def test_a_prefix_drops_the_post_filter():
    """The class was chosen for the whole file: a prefix, or a fit that loses the detail
    layer, is written without the filter (a valid version 1 file)."""
    f = replace(FILTERED_BASE, detail=b"\xd0" * 40)
    assert f.with_stages(2) == f
    assert parse(f.with_stages(1).to_bytes()).version == 1
    assert fit(f, len(f.to_bytes())) == f
    smaller = fit(f, len(f.to_bytes()) - 1)
    assert (smaller.detail, smaller.filter_id, smaller.stages) == (b"", b"", f.stages)
    held = replace(f, intervals=b"\x30\x10\x30")
    assert parse(held.with_stages(1).to_bytes()).version == 1
    assert fit(held, len(held.to_bytes()) - 1) == smaller


@pytest.mark.parametrize("bad, message", [
    ({"filter_id": b"\x01" * 7}, "8 bytes"),
    ({"filter_class": 256}, "byte"),
    ({"detail_version": 2}, "version 3 layout"),
])
def test_bad_post_filter_fields_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        replace(FILTERED, **bad).to_bytes()


def test_golden_bytes_with_a_packed_detail_layer():
    """Version 6: version 5's header; the detail layer's 192 class bytes become a
    24-byte bitmap of the coded classes and their bytes."""
    assert PACKED.detail.hex() == (
        "0180" "183014" + bytes(range(15)).hex() + "80" "40" + "00" * 21 + "01" + "5a5a5a" + "c0c1c2c3c4c5c6c7")
    data = PACKED.to_bytes()
    assert data.hex() == (
        "89414543" "06" "03" "0001020304050607" "00000003" "00000002" "01" "00000002" f"{len(PACKED.detail):08x}"
        "1011121314151617" "07" "260d1a" "00000004" "01020304" + PACKED.detail.hex() + "0708"
        + f"{zlib.crc32(data[:-4]):08x}")
    assert parse(data) == PACKED and parse(data).version == 6
    assert PACKED.unpacked_detail() == (LAYOUT_3, 3)
    plain = PACKED.without_filter()                   # no filter, so no version 6: unpacked
    assert (plain.detail, plain.detail_version, parse(plain.to_bytes()).version) == (LAYOUT_3, 3, 3)
    assert len(LAYOUT_3) - len(PACKED.detail) == 192 - 24 - 3


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 255) | st.just(0), min_size=192, max_size=192), st.binary(max_size=40),
       st.sampled_from([(PACKED_DETAIL, LAYOUT_3[:20]), (NEAR_DETAIL, LAYOUT_10[:26])]))
def test_packing_is_exact_both_ways(classes, words, layout):
    packed_layout, head = layout
    payload = head + bytes(classes) + words
    packed = pack_detail(payload, packed_layout)
    assert unpack_detail(packed, packed_layout) == payload
    assert len(packed) == len(payload) - 192 + 24 + sum(1 for b in classes if b)


@pytest.mark.parametrize("packed, message", [
    (pack_detail(LAYOUT_3)[:43], "head"),
    (pack_detail(LAYOUT_3)[:45], "ends inside"),
    (pack_detail(LAYOUT_3)[:44] + b"\x5a\x00\x5a", "byte is 0"),
])
def test_malformed_packed_detail_is_refused(packed, message):
    with pytest.raises(FormatError, match=message):
        unpack_detail(packed)
    with pytest.raises(FormatError, match=message):          # nor is it written
        replace(PACKED, detail=packed).to_bytes()


def test_a_version_6_file_with_a_malformed_packed_head_is_refused():
    """(What the container cannot see, such as coder words cut short by a bitmap that
    claims one class too many, the detail layer's decoder refuses: tests/test_detail.py.)"""
    data = bytearray(PACKED.to_bytes()[:-4])
    at = data.index(PACKED.detail) + 20                # the bitmap: every class coded
    data[at:at + 24] = b"\xff" * 24
    with pytest.raises(FormatError, match="ends inside"):
        parse(bytes(data) + struct.pack(">I", zlib.crc32(bytes(data))))


def test_a_packed_detail_layer_needs_version_6():
    with pytest.raises(ValueError, match="version 6 files only"):
        replace(PACKED, intervals=b"").to_bytes()
    with pytest.raises(ValueError, match="version 6 files only"):
        replace(PACKED, filter_id=b"", filter_class=0, intervals=b"").to_bytes()


def test_golden_bytes_of_a_scaled_file():
    """Version 7: every field of version 6 (zeros for a filter, intervals or detail
    layer the file has not), then the coded width and height, then the stage table."""
    data = SCALED.to_bytes()
    assert data.hex() == (
        "89414543" "07" "01" "0001020304050607" "00000003" "00000002" "02" "00000000" "00000000"
        "0000000000000000" "00" "000000" "00000002" "00000001"
        "00000004" "00000008" "01020304" "aabbccddeeff0011" + f"{zlib.crc32(data[:-4]):08x}")
    assert parse(data) == SCALED and parse(data).version == 7 and parse(data).coded_size == (1, 2)
    data = SCALED_HELD.to_bytes()
    assert data.hex() == (
        "89414543" "07" "03" "0001020304050607" "00000003" "00000002" "01" "00000002" f"{len(PACKED.detail):08x}"
        "1011121314151617" "07" "260d1a" "00000003" "00000001"
        "00000004" "01020304" + PACKED.detail.hex() + "0708" + f"{zlib.crc32(data[:-4]):08x}")
    assert parse(data) == SCALED_HELD and parse(data).detail_version == PACKED_DETAIL


def test_a_scaled_file_stays_scaled():
    """Dropping the filter, the detail layer or stages keeps the coded size (and so
    version 7, whose detail layer stays packed)."""
    plain = SCALED_HELD.without_filter()
    assert (plain.version, plain.detail, plain.coded_size) == (7, PACKED.detail, (1, 3))
    assert parse(plain.to_bytes()) == plain
    cut = fit(SCALED_HELD, len(SCALED_HELD.to_bytes()) - 1)
    assert (cut.version, cut.detail, cut.filter_id, cut.coded_size) == (7, b"", b"", (1, 3))
    assert parse(cut.to_bytes()) == cut
    two = replace(SCALED, stages=SCALED.stages * 2)
    assert parse(fit(two, len(two.to_bytes()) - 1).to_bytes()) == replace(two, stages=two.stages[:3])
    with pytest.raises(ValueError, match="first stage alone"):
        fit(SCALED, len(SCALED.to_bytes()) - 13)


def test_golden_bytes_with_a_filter_after_scaling_up():
    """Version 8: version 7's fields, then the filter's id and class, then the stage table."""
    data = UPFILTERED_BASE.to_bytes()
    assert data.hex() == (
        "89414543" "08" "01" "0001020304050607" "00000003" "00000002" "02" "00000000" "00000000"
        "0000000000000000" "00" "000000" "00000002" "00000001" "2021222324252627" "00"
        "00000004" "00000008" "01020304" "aabbccddeeff0011" + f"{zlib.crc32(data[:-4]):08x}")
    assert parse(data) == UPFILTERED_BASE and parse(data).version == 8
    data = UPFILTERED.to_bytes()
    assert data[:5] == b"\x89AEC\x08" and data[51:60] == bytes(range(32, 40)) + b"\x04"
    assert data[60:].startswith(bytes.fromhex("00000004")) and parse(data) == UPFILTERED
    assert UPFILTERED.header_size == 60


def test_dropping_the_filter_after_scaling_up_gives_version_7():
    """It was trained on the post-filter's output: a file without the post-filter (a
    prefix, a budget) drops it too; alone, it can be dropped to give version 7."""
    assert UPFILTERED.without_upfilter() == SCALED_HELD and SCALED_HELD.version == 7
    plain = UPFILTERED.without_filter()
    assert (plain.version, plain.upfilter_id, plain.filter_id) == (7, b"", b"")
    assert parse(fit(UPFILTERED, len(UPFILTERED.to_bytes()) - 1).to_bytes()).upfilter_id == b""
    assert fit(UPFILTERED, len(UPFILTERED.to_bytes())) == UPFILTERED
    assert replace(UPFILTERED_BASE, stages=SCALED.stages * 2).with_stages(1).upfilter_id == b""


@pytest.mark.parametrize("bad, message", [
    ({"coded_width": 0, "coded_height": 0}, "reduced size"),
    ({"upfilter_id": bytes(8)}, "not all zero"), ({"upfilter_id": b"\1" * 7}, "8 bytes"),
    ({"upfilter_class": 256}, "byte"), ({"upfilter_class": True}, "byte"),
])
def test_bad_filters_after_scaling_up_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        replace(UPFILTERED, **bad).to_bytes()


def test_a_version_8_file_naming_no_filter_is_refused():
    data = bytearray(UPFILTERED_BASE.to_bytes()[:-4])
    data[51:59] = bytes(8)
    with pytest.raises(FormatError, match="version 8 file names no filter"):
        parse(bytes(data) + struct.pack(">I", zlib.crc32(bytes(data))))


@pytest.mark.parametrize("bad, message", [
    ({"coded_width": 4}, "coded size"), ({"coded_height": 3}, "coded size"),
    ({"coded_width": 3, "coded_height": 2}, "coded size"), ({"coded_width": 0, "coded_height": 1}, "coded size"),
    ({"filter_id": bytes(8), "filter_class": 0}, "zeros"),
    ({"detail": LAYOUT_3, "detail_version": 3}, "packed"),
])
def test_bad_scaled_files_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        replace(SCALED_HELD, **bad).to_bytes()


# Where versions 7-9 keep each header field: (offset, struct format).
_FIELDS = {"version": (4, ">B"), "detail_len": (27, ">I"), "filter_id": (31, ">8s"), "filter_class": (39, ">B"),
           "intervals": (40, ">3s"), "coded_width": (43, ">I"), "coded_height": (47, ">I"),
           "upfilter_id": (51, ">8s"), "upfilter_class": (59, ">B"), "adaptive": (60, ">2s"),
           "zeros_id": (62, ">8s")}


def _rewritten(f, **fields):
    """The bytes of version 7-11 file ``f`` with header fields replaced and the CRC made valid again."""
    data = bytearray(f.to_bytes()[:-4])
    for name, value in fields.items():
        struct.pack_into(_FIELDS[name][1], data, _FIELDS[name][0], value)
    return bytes(data) + struct.pack(">I", zlib.crc32(bytes(data)))


@pytest.mark.parametrize("fields, message", [
    ({"coded_width": 4}, "coded size"), ({"coded_width": 0}, "coded size"),
    ({"coded_width": 3, "coded_height": 2}, "coded size"),
    ({"filter_id": bytes(8), "filter_class": 0}, "intervals"),
    ({"filter_id": bytes(8), "intervals": bytes(3), "filter_class": 1}, "class but no post-filter"),
    ({"intervals": bytes(3)}, "intervals"),
])
def test_bad_version_7_headers_are_refused(fields, message):
    with pytest.raises(FormatError, match=message):
        parse(_rewritten(SCALED_HELD, **fields))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 70000), st.integers(1, 70000), st.integers(0, 70000), st.integers(0, 70000))
def test_coded_sizes_round_trip_or_are_refused(width, height, coded_width, coded_height):
    """Whatever the sizes, the writer refuses what the parser would, and what it
    writes parses back to the same file."""
    f = replace(SCALED, width=width, height=height, coded_width=coded_width, coded_height=coded_height)
    scaled = (coded_width, coded_height) != (0, 0)          # (0, 0): coded at its own size
    try:
        data = f.to_bytes()
    except ValueError:
        assert not (1 <= width <= 1 << 16 and 1 <= height <= 1 << 16 and (not scaled or (
            1 <= coded_width <= width and 1 <= coded_height <= height and (coded_width, coded_height) != (width, height))))
        return
    assert parse(data) == f and parse(data).version == (7 if scaled else 1)
    assert parse(data).coded_size == ((coded_height, coded_width) if scaled else (height, width))


def test_golden_bytes_with_adaptive_steps():
    """Version 9: every field of version 8 (zeros for what the file lacks, a coded size
    of 0 x 0 at its own size), then the 2 adaptive bytes, then the stage table."""
    data = ADAPTED.to_bytes()
    assert data.hex() == (
        "89414543" "09" "03" "0001020304050607" "00000003" "00000002" "01" "00000002" f"{len(PACKED.detail):08x}"
        "1011121314151617" "07" "260d1a" "00000000" "00000000" "0000000000000000" "00" "0a3a"
        "00000004" "01020304" + PACKED.detail.hex() + "0708" + f"{zlib.crc32(data[:-4]):08x}")
    assert parse(data) == ADAPTED and parse(data).version == 9 and not parse(data).scaled
    assert ADAPTED.header_size == 62
    data = ADAPTED_UP.to_bytes()
    assert data[:5] == b"\x89AEC\x09" and data[43:62] == bytes.fromhex("0000000300000001") + bytes(
        range(32, 40)) + b"\x04\x0a\x3a"
    assert parse(data) == ADAPTED_UP and parse(data).coded_size == (1, 3)
    assert parse(ADAPTED_PLAIN.to_bytes()) == ADAPTED_PLAIN
    unheld = replace(ADAPTED, intervals=b"")             # a card's filter without intervals
    assert parse(unheld.to_bytes()) == unheld and unheld.to_bytes()[40:43] == bytes(3)


def test_golden_bytes_with_near_frequency_contexts():
    """Version 10: version 9's header; its detail layer has 6 more offsets after the
    first 15, then the packed class bytes."""
    assert NEAR.detail.hex() == (
        "0180" "183014" + bytes(range(15)).hex() + "646566676869" "80" "40" + "00" * 21 + "01" + "5a5a5a"
        + "c0c1c2c3c4c5c6c7")
    data = NEAR.to_bytes()
    assert data.hex() == (
        "89414543" "0a" "03" "0001020304050607" "00000003" "00000002" "01" "00000002" f"{len(NEAR.detail):08x}"
        "1011121314151617" "07" "260d1a" "00000000" "00000000" "0000000000000000" "00" "0a3a"
        "00000004" "01020304" + NEAR.detail.hex() + "0708" + f"{zlib.crc32(data[:-4]):08x}")
    assert parse(data) == NEAR and parse(data).version == 10 and NEAR.header_size == 62
    assert NEAR.unpacked_detail() == (LAYOUT_10, 10)
    assert parse(NEAR_UP.to_bytes()) == NEAR_UP and parse(NEAR_UP.to_bytes()).coded_size == (1, 3)
    # the same bytes read as version 9 unpack to another head: the version says which
    assert ADAPTED.unpacked_detail() == (LAYOUT_3, 3)


def test_near_frequency_contexts_stay_with_the_detail_layer():
    """Dropping a filter keeps version 10; dropping the detail layer gives version 1, 7
    or 8's forms, as for version 9; the layout needs the adaptive bytes."""
    assert NEAR.without_filter() == NEAR_PLAIN and parse(NEAR_PLAIN.to_bytes()).version == 10
    assert parse(NEAR_UP.without_upfilter().to_bytes()).version == 10
    cut = fit(NEAR, len(NEAR.to_bytes()) - 1)
    assert (cut.version, cut.detail, cut.adaptive) == (1, b"", b"") and parse(cut.to_bytes()) == cut
    assert cut == fit(ADAPTED, len(ADAPTED.to_bytes()) - 1)
    assert fit(NEAR_UP, len(NEAR_UP.to_bytes()) - 1).version == 7
    with pytest.raises(ValueError, match="version 10-11 files only"):
        replace(NEAR, adaptive=b"").to_bytes()
    with pytest.raises(FormatError, match="ends inside"):      # version 9's layer read with version 10's head
        parse(_rewritten(ADAPTED, version=10))


def test_zero_tables_stay_with_the_stages():
    """Version 11 names the zero tables its stages are coded with: dropping the detail
    layer, the filters or stages keeps it (the stages are coded the same)."""
    for f in (ZEROS, ZEROS_UP, ZEROS_BARE, ZEROS_SCALED):
        assert f.version == 11 and parse(f.to_bytes()) == f
        assert len(f.to_bytes()) == f.header_size + 4 * len(f.stages) + sum(map(len, f.stages)) \
            + len(f.detail) + len(f.alpha) + 4
    cut = fit(ZEROS, len(ZEROS.to_bytes()) - 1)
    assert (cut.version, cut.detail, cut.adaptive, cut.zeros_id) == (11, b"", b"", ZEROS_ID)
    assert parse(cut.to_bytes()) == cut
    assert parse(ZEROS.without_filter().to_bytes()).version == 11
    assert ZEROS_UP.without_upfilter().version == 11
    assert parse(ZEROS_BARE.to_bytes()).header_size == HEADER_SIZE + 4 + 9 + 3 + 8 + 9 + 2 + 8


@pytest.mark.parametrize("fields, message", [
    ({"zeros_id": bytes(8)}, "names no zero tables"),
    ({"adaptive": b"\x0a\x3a"}, "adaptive steps but no detail layer"),
    ({"version": 10}, "declared|truncated|without a detail layer"),
])
def test_bad_version_11_fields(fields, message):
    with pytest.raises(FormatError, match=message):
        parse(_rewritten(ZEROS_BARE, **fields))


@pytest.mark.parametrize("bad, message", [
    (replace(ZEROS_BARE, zeros_id=bytes(8)), "not all zero"),
    (replace(ZEROS_BARE, zeros_id=b"\x01" * 7), "8 bytes"),
    (replace(ZEROS, detail=PACKED.detail, detail_version=PACKED_DETAIL), "near-frequency contexts"),
])
def test_unwritable_version_11_files(bad, message):
    with pytest.raises(ValueError, match=message):
        bad.to_bytes()


def test_adaptive_steps_stay_with_the_detail_layer():
    """Dropping a filter keeps version 9 (the levels still need the adaptive steps);
    dropping the detail layer drops them, back to version 1, 7 or 8's forms."""
    assert ADAPTED.without_filter() == ADAPTED_PLAIN and ADAPTED_PLAIN.version == 9
    assert parse(ADAPTED_UP.without_filter().to_bytes()).version == 9
    assert ADAPTED_UP.without_upfilter().version == 9
    cut = fit(ADAPTED, len(ADAPTED.to_bytes()) - 1)
    assert (cut.version, cut.detail, cut.adaptive, cut.filter_id) == (1, b"", b"", b"")
    cut = fit(ADAPTED_UP, len(ADAPTED_UP.to_bytes()) - 1)
    assert (cut.version, cut.coded_size, cut.adaptive) == (7, (1, 3), b"")
    two = replace(ADAPTED, stages=ADAPTED.stages * 2)
    assert two.with_stages(1).adaptive == b"" and parse(two.with_stages(1).to_bytes()).version == 1


@pytest.mark.parametrize("bad, message", [
    ({"adaptive": b"\x0a"}, "2 bytes"), ({"detail": b""}, "detail layer"),
    ({"detail": LAYOUT_3, "detail_version": 3}, "packed"),
    ({"filter_id": bytes(8)}, "zeros"), ({"filter_id": b"", "filter_class": 0}, "intervals"),
    ({"upfilter_id": bytes(range(32, 40))}, "reduced size"), ({"upfilter_class": 3}, "no such filter"),
    ({"filter_id": b"", "intervals": b""}, "class, but no post-filter"),
])
def test_bad_version_9_and_10_files_are_not_written(bad, message):
    for good in (ADAPTED, NEAR):
        with pytest.raises(ValueError, match=message):
            replace(good, **bad).to_bytes()


@pytest.mark.parametrize("fields, message", [
    ({"coded_width": 3}, "coded size"), ({"coded_height": 1}, "coded size"),
    ({"upfilter_class": 2}, "class of filter after scaling up but no such filter"),
    ({"upfilter_id": bytes(range(32, 40))}, "coded at its own size"),
    ({"detail_len": 0}, "without a detail layer|declared"),
])
def test_bad_version_9_and_10_headers_are_refused(fields, message):
    for good, plain in ((ADAPTED, ADAPTED_PLAIN), (NEAR, NEAR_PLAIN)):
        with pytest.raises(FormatError, match=message):
            parse(_rewritten(good, **fields))
        with pytest.raises(FormatError, match="intervals but no post-filter"):
            parse(_rewritten(plain, intervals=b"\x20\x08\x13"))


def test_an_unknown_detail_version_is_refused():
    with pytest.raises(ValueError, match="version 2, 3, 6 or 10"):
        replace(DETAILED, detail_version=4).to_bytes()


def test_a_prefix_drops_the_detail_layer():
    f = AecFile("RGB", bytes(8), 3, 2, SAMPLE.stages, b"", b"\xd0" * 40)
    assert f.with_stages(2).detail == f.detail
    assert f.with_stages(1).detail == b"" and parse(f.with_stages(1).to_bytes()).version == 1
    assert fit(f, len(f.to_bytes())) == f
    smaller = fit(f, len(f.to_bytes()) - 1)        # the detail layer goes first, then stages
    assert smaller.detail == b"" and smaller.stages == f.stages
    assert fit(f, len(SAMPLE.to_bytes()) - 1).stages == f.stages[:1]


def test_round_trip_and_prefix():
    assert parse(SAMPLE.to_bytes()) == SAMPLE
    one = parse(SAMPLE.to_bytes()).with_stages(1)
    assert parse(one.to_bytes()).stages == (b"\x01\x02\x03\x04",)


def test_alpha_round_trip():
    f = AecFile("RGBA", b"\0" * 8, 5, 7, (b"abcd",), zlib.compress(b"\xff" * 35))
    assert parse(f.to_bytes()) == f


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_truncation_is_refused(sample):
    data = sample.to_bytes()
    for cut in range(len(data)):
        with pytest.raises(FormatError):
            parse(data[:cut])


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_single_bit_flip_is_refused(sample):
    data = sample.to_bytes()
    for i in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(FormatError):
            parse(bytes(flipped))


def _with_header(**fields):
    """SAMPLE's bytes with header fields replaced and the CRC made valid again."""
    data = bytearray(SAMPLE.to_bytes()[:-4])
    offsets = {"version": (4, ">B"), "mode": (5, ">B"), "width": (14, ">I"), "height": (18, ">I"),
               "stages": (22, ">B"), "alpha_len": (23, ">I")}
    for name, value in fields.items():
        off, fmt = offsets[name]
        struct.pack_into(fmt, data, off, value)
    return bytes(data) + struct.pack(">I", zlib.crc32(bytes(data)))


@pytest.mark.parametrize("fields, message", [
    ({"version": 12}, "version 12"),
    ({"version": 11}, "truncated|declared|coded size|no zero tables"),
    ({"version": 10}, "truncated|declared|coded size|without a detail layer"),
    ({"version": 9}, "truncated|declared|coded size|without a detail layer"),
    ({"version": 8}, "truncated|declared|coded size"),
    ({"version": 7}, "truncated|declared|coded size"),
    ({"version": 0}, "version 0"),
    ({"version": 2}, "declared"),          # a version 1 body read as version 2
    ({"version": 3}, "declared"),
    ({"version": 4}, "truncated|declared"),
    ({"version": 5}, "truncated|declared|without a detail layer"),
    ({"version": 6}, "truncated|declared|without a detail layer"),
    ({"mode": 9}, "colour mode"),
    ({"width": 0}, "outside"),
    ({"height": 0xFFFFFFFF}, "outside"),
    ({"stages": 0}, "no stages"),
    ({"stages": 255}, "stage table"),
    ({"alpha_len": 0xFFFFFFFF}, "declared"),
])
def test_bad_header_fields(fields, message):
    with pytest.raises(FormatError, match=message):
        parse(_with_header(**fields))


def test_pixel_limit_checked_before_anything_else():
    big = AecFile("RGB", b"\0" * 8, 60000, 60000, (b"abcd",)).to_bytes()
    with pytest.raises(FormatError, match="exceeds the limit"):
        parse(big, max_pixels=89_478_485)


def test_other_formats_and_garbage():
    for data in (b"", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, b"GIF89a", b"\xff\xd8\xff\xe0", b"x" * 100, MAGIC):
        with pytest.raises(FormatError):
            parse(data)


def test_format_error_is_a_value_error():
    assert issubclass(FormatError, ValueError)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_bytes(data):
    try:
        parse(data)
    except FormatError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SAMPLES), st.integers(0, 60),
       st.binary(min_size=1, max_size=8))
def test_fuzz_overwrite_inside_valid_file(sample, pos, junk):
    data = bytearray(sample.to_bytes())
    data[pos:pos + len(junk)] = junk
    try:
        parse(bytes(data))
    except FormatError:
        pass
