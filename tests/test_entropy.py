"""Contexts, integer tables and the constriction coder: exact round trips."""
import numpy as np
import pytest

from aecodec.entropy import (NUM_CONTEXTS, PayloadError, TABLE_TOTAL, context, count_indices, count_zeros,
                             decode_stage, encode_stage, min_bits_per_position, min_bits_with_zeros,
                             quantize_counts,
                             quantize_zero_counts)
from aecodec.entropy.context import ZERO_CONTEXTS, ZERO_GROUP_SET, checkerboard, zero_context


def _random_indices(seed, stages=3, groups=5, h=6, w=7, k=16):
    rng = np.random.default_rng(seed)
    return (rng.geometric(0.45, size=(stages, groups, h, w)) - 1).clip(0, k - 1)


def _tables(indices, k=16):
    counts = np.zeros((indices.shape[0], indices.shape[1], NUM_CONTEXTS, k), dtype=np.int64)
    count_indices(counts, indices)
    return quantize_counts(counts)


def test_context_values():
    prev = np.zeros((3, 3, 3), dtype=np.int64)
    prev[1, 1, 1] = 5
    cur = np.zeros((3, 3, 3), dtype=np.int64)
    cur[0, 1, 1] = 2
    ctx = context(prev, cur, 1)
    assert ctx[1, 1] == 9 + 3 * 1 + 0          # prev non-zero, one earlier group non-zero
    assert ctx[0, 1] == 1                      # one non-zero neighbour in the previous stage
    assert context(None, cur, 0).max() == 0


def test_tables_are_valid_integers():
    f = _tables(_random_indices(0))
    assert f.dtype == np.int32 and f.min() >= 1 and f.sum(-1).max() <= TABLE_TOTAL


@pytest.mark.parametrize("seed", range(5))
def test_exact_round_trip(seed):
    idx = _random_indices(seed)
    freqs = _tables(idx)
    prev = None
    for s in range(idx.shape[0]):
        payload = encode_stage(freqs, idx, s)
        prev = decode_stage(freqs, payload, prev, s, idx.shape[1], idx.shape[2], idx.shape[3])
        assert np.array_equal(prev, idx[s])


def test_golden_bytes():
    """The coded bytes of a fixed input never change (a change breaks every old file)."""
    idx = _random_indices(42, stages=2, groups=2, h=3, w=4)
    freqs = _tables(idx)
    assert encode_stage(freqs, idx, 0).hex() == GOLDEN_STAGE0
    decoded = decode_stage(freqs, bytes.fromhex(GOLDEN_STAGE0), None, 0, 2, 3, 4)
    assert np.array_equal(decoded, idx[0])


def test_skewed_tables_beat_log2k():
    idx = _random_indices(1, groups=8, h=16, w=16)
    freqs = _tables(idx)
    bits = 8 * sum(len(encode_stage(freqs, idx, s)) for s in range(idx.shape[0]))
    assert bits < 0.7 * idx.size * np.log2(16)


def test_bad_payload_is_a_clean_error():
    idx = _random_indices(3)
    freqs = _tables(idx)
    with pytest.raises(PayloadError):
        decode_stage(freqs, b"\x01\x02\x03", None, 0, 5, 6, 7)


GOLDEN_STAGE0 = "0e910f5f34a0caf300000000"  # recorded with constriction 0.5.0


# -- version 11: zero tables -------------------------------------------------------------

def _zero_tables(indices):
    counts = np.zeros((indices.shape[0], -(-indices.shape[1] // ZERO_GROUP_SET), ZERO_CONTEXTS, 2), np.int64)
    count_zeros(counts, indices)
    return quantize_zero_counts(counts)


def _zero_context_by_hand(prev, cur, g, i, j):
    """The documented zero context of one position, spelled out term by term."""
    h, w = cur.shape[1:]
    near = [(i + di, j + dj) for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)) if 0 <= i + di < h and 0 <= j + dj < w]
    same = around = busy = 0
    if prev is not None:
        same = int(prev[g, i, j] != 0)
        around = sum(prev[g, a, b] != 0 for a, b in near)
        busy = sum(int((prev[:, i, j] != 0).sum()) >= e for e in (1, 2, 4, 8, 16))
    earlier = sum(int((cur[:g, i, j] != 0).sum()) >= e for e in (1, 2, 3, 5, 8))
    last = int(g > 0 and cur[g - 1, i, j] != 0)
    phase = 1 + sum(cur[g, a, b] != 0 for a, b in near) if (i + j) % 2 else 0
    return ((((same * 5 + around) * 6 + busy) * 6 + earlier) * 2 + last) * 6 + phase


@pytest.mark.parametrize("seed", range(3))
def test_zero_context_is_the_documented_one(seed):
    idx = _random_indices(seed, stages=2, groups=20, h=4, w=5) * (np.random.default_rng(seed).random((2, 20, 4, 5)) < 0.5)
    for s, prev in ((0, None), (1, idx[0])):
        for g in (0, 1, 7, 19):
            ctx = zero_context(prev, idx[s], g, checkerboard(4, 5))
            want = [[_zero_context_by_hand(prev, idx[s], g, i, j) for j in range(5)] for i in range(4)]
            assert ctx.tolist() == want
            assert 0 <= ctx.min() and ctx.max() < ZERO_CONTEXTS


@pytest.mark.parametrize("seed", range(4))
def test_exact_round_trip_with_zero_tables(seed):
    idx = _random_indices(seed, groups=9, h=5, w=8)
    freqs, zeros = _tables(idx), _zero_tables(idx)
    prev = None
    for s in range(idx.shape[0]):
        payload = encode_stage(freqs, idx, s, zeros)
        prev = decode_stage(freqs, payload, prev, s, 9, 5, 8, zeros)
        assert np.array_equal(prev, idx[s])
        assert 8 * len(payload) + 64 >= 5 * 8 * min_bits_with_zeros(freqs, zeros)[s]


def test_stages_past_the_zero_tables_are_coded_as_before():
    """Zero tables of depth D code stages 1..D; later stages keep the 18-context rows."""
    idx = _random_indices(2, groups=9, h=5, w=8)
    freqs, zeros = _tables(idx), _zero_tables(idx)[:1]
    assert encode_stage(freqs, idx, 0, zeros) != encode_stage(freqs, idx, 0)
    for s in (1, 2):
        assert encode_stage(freqs, idx, s, zeros) == encode_stage(freqs, idx, s)
        assert (decode_stage(freqs, encode_stage(freqs, idx, s), idx[s - 1], s, 9, 5, 8, zeros) == idx[s]).all()
    bits = min_bits_with_zeros(freqs, zeros)
    assert bits.shape == (3,) and (bits[1:] == min_bits_per_position(freqs)[1:]).all()


def test_zero_tables_code_sparse_indices_in_fewer_bytes():
    """Where zeros cluster (a busy place stays busy), the zero contexts see it."""
    rng = np.random.default_rng(7)
    busy = rng.random((1, 1, 24, 24)) < 0.15
    busy = busy | np.roll(busy, 1, 2) | np.roll(busy, 1, 3)
    idx = np.where(busy & (rng.random((3, 8, 24, 24)) < 0.8), rng.integers(1, 16, (3, 8, 24, 24)), 0)
    freqs, zeros = _tables(idx), _zero_tables(idx)
    old = sum(len(encode_stage(freqs, idx, s)) for s in range(3))
    new = sum(len(encode_stage(freqs, idx, s, zeros)) for s in range(3))
    assert new < 0.97 * old


def test_zero_tables_golden_bytes():
    """Version 11's coded bytes of a fixed input never change."""
    idx = _random_indices(42, stages=2, groups=5, h=3, w=4)
    freqs, zeros = _tables(idx), _zero_tables(idx)
    assert encode_stage(freqs, idx, 1, zeros).hex() == GOLDEN_ZEROS_STAGE1
    assert np.array_equal(decode_stage(freqs, bytes.fromhex(GOLDEN_ZEROS_STAGE1), idx[0], 1, 5, 3, 4, zeros), idx[1])


def test_zero_tables_refuse_trailing_words():
    idx = _random_indices(5)
    freqs, zeros = _tables(idx), _zero_tables(idx)
    payload = encode_stage(freqs, idx, 0, zeros)
    with pytest.raises(PayloadError):
        decode_stage(freqs, payload + b"\x00\x00\x00\x01", None, 0, 5, 6, 7, zeros)
    with pytest.raises(PayloadError):       # nor do the 18-context tables read them
        decode_stage(freqs, payload, None, 0, 5, 6, 7)


GOLDEN_ZEROS_STAGE1 = "6ef1f0466b1aaddf7b3f5bb64320730d"  # recorded with constriction 0.5.0
