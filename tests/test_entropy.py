"""Contexts, integer tables and the constriction coder: exact round trips."""
import numpy as np
import pytest

from aecodec.entropy import (NUM_CONTEXTS, PayloadError, TABLE_TOTAL, context, count_indices,
                             decode_stage, encode_stage, quantize_counts)


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
