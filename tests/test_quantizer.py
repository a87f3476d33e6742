"""The encode-time codeword search (greedy and beam)."""
import itertools

import pytest
import torch

from aecodec.model.quantizer import ResidualProductVQ


def _quantizer(stages=3, groups=2, dim=3, codes=8, seed=0):
    torch.manual_seed(seed)
    q = ResidualProductVQ(stages, groups, dim, codes, bit_cost=0.05, bit_cost_decay=0.6).eval()
    q.codebooks.normal_(0, 0.3).mul_(torch.tensor([0.6 ** s for s in range(stages)]).view(-1, 1, 1, 1))
    q.codebooks[:, :, 0] = 0
    q.prior_counts.uniform_(0.1, 5.0)
    q.distortion_weight.uniform_(0.5, 2.0)
    q.search_mix = 0.0
    return q


def _total_cost(q, v, idx):
    """distortion / lambda of the last stage + bits of every stage, per vector and group."""
    bits = q.bits_table()
    groups = torch.arange(q.groups)[None]
    recon, spent, ctx = torch.zeros_like(v), torch.zeros(v.shape[:2]), torch.zeros(v.shape[:2], dtype=torch.long)
    for s in range(idx.shape[0]):
        spent = spent + bits[s][groups, ctx, idx[s]]
        recon = recon + q.codebooks[s][groups, idx[s]]
        ctx = (idx[s] != 0).long()
    err = ((v - recon) ** 2 * q.distortion_weight).sum(-1)
    return err / (q.bit_cost[idx.shape[0] - 1] * q.search_scale) + spent


def test_greedy_search_equals_the_training_quantizer():
    q = _quantizer()
    v = torch.randn(500, q.groups, q.dim) * 0.4
    expected = torch.stack(q._quantize_vectors(v, 3)[2])
    assert torch.equal(q.search(v, 3, beam=1), expected)


def test_full_beam_finds_the_exhaustive_optimum_over_two_stages():
    # With beam >= codes every first-stage choice survives, so the final pick is exact.
    q = _quantizer(stages=2, codes=6)
    v = torch.randn(300, q.groups, q.dim) * 0.4
    found = q.search(v, 2, beam=6)
    best = None
    for a, b in itertools.product(range(6), repeat=2):
        idx = torch.stack([torch.full(v.shape[:2], a), torch.full(v.shape[:2], b)])
        cost = _total_cost(q, v, idx)
        best = cost if best is None else torch.minimum(best, cost)
    assert torch.allclose(_total_cost(q, v, found), best, atol=1e-5)


@pytest.mark.parametrize("beam", [2, 4])
def test_beam_lowers_the_total_cost_on_average(beam):
    q = _quantizer(stages=4)
    v = torch.randn(2000, q.groups, q.dim) * 0.4
    greedy = _total_cost(q, v, q.search(v, 4, beam=1)).mean()
    wider = _total_cost(q, v, q.search(v, 4, beam=beam)).mean()
    assert wider < greedy


@pytest.mark.parametrize("width", ["short rows", "rows longer than a chunk"])
def test_chunked_quantize_matches_one_piece(width):
    q = _quantizer()
    q.search_beam = 3
    chunk = (1 << 21) // (q.groups * q.codes * 3)
    w = 7 if width == "short rows" else chunk + chunk // 2
    h = 2 * chunk // w + 3 if width == "short rows" else 2          # several chunks either way
    y = torch.randn(2, q.groups * q.dim, h, w) * 0.4
    whole = q.quantize(y, 3)
    assert whole.dtype == torch.int16
    v = q._to_vectors(y)
    assert torch.equal(whole.permute(0, 1, 3, 4, 2).reshape(3, -1, q.groups).long(), q.search(v, 3, beam=3))
